"""Regenerate the TypeScript types in `clients/typescript/` from the OpenAPI document:

    .venv/bin/python -m scripts.openapi_types        # or: make typescript

It writes the standalone server's document to `clients/typescript/openapi.json` and runs the pinned
`openapi-typescript` on it into `schema.d.ts` (`make node` installs it). `tests/e2e/test_typescript_types.py`
checks that both match what a running server serves, and that the types compile.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TYPESCRIPT = ROOT / "clients" / "typescript"
GENERATOR = TYPESCRIPT / "node_modules" / ".bin" / "openapi-typescript"
FLAGS = (
    "--root-types",
    "--root-types-no-schema-prefix",
    "--default-non-nullable",
    "false",
    "--empty-objects-unknown",
)
"""Every component also as a top-level type (`ChatSendInput`, `UIChunk`); a property with a default stays
optional (the server fills it in); a free-form object (`dict[str, Any]`) is `Record<string, unknown>`."""


def document() -> dict[str, Any]:
    """The document `python -m app` serves (its configuration changes nothing in it)."""
    from app.server import standalone_settings
    from chatstream import create_app

    settings = standalone_settings({"CHAT_AUTH_TOKENS": "t:u", "DATABASE_URL": "memory://"})
    doc: dict[str, Any] = create_app(settings).openapi_schema.to_schema()
    return doc


def dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


DATA_PART = (
    "        DataPart: {\n            type: string;",
    "        DataPart: {\n            type: `data-${string}`;",
)
"""OpenAPI cannot say "a string that starts with `data-`" in a way openapi-typescript turns into a type, and
with a plain `string` the open `DataPart` member would swallow every other member of `UIChunk`: no
`chunk.type === "text-delta"` would narrow to `TextDelta`. The template literal type keeps the union
discriminated, as the AI SDK's own `DataUIMessageChunk` is."""


def generate(source: Path, target: Path) -> None:
    """Run openapi-typescript on the document at `source`, writing `target` (with `DATA_PART` applied)."""
    if not GENERATOR.exists():
        raise SystemExit(f"{GENERATOR} is missing: run `make node`")
    subprocess.run(  # noqa: S603 - the pinned generator on our own files
        [str(GENERATOR), str(source), "-o", str(target), *FLAGS],
        check=True,
        cwd=TYPESCRIPT,
        capture_output=True,
        timeout=120,
    )
    generated = target.read_text()
    if DATA_PART[0] not in generated:
        raise SystemExit("openapi-typescript no longer writes DataPart as expected: update DATA_PART")
    target.write_text(generated.replace(DATA_PART[0], DATA_PART[1], 1))


def main() -> None:
    source = TYPESCRIPT / "openapi.json"
    source.write_text(dump(document()))
    generate(source, TYPESCRIPT / "schema.d.ts")
    print(f"wrote {source.relative_to(ROOT)} and clients/typescript/schema.d.ts", file=sys.stderr)


if __name__ == "__main__":
    main()
