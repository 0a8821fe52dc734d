"""The TypeScript types in `clients/typescript/` are the served document's, and they compile.

A real `python -m app` serves `/schema/openapi.json`; it must equal the committed `openapi.json`, and the
pinned openapi-typescript must turn it into exactly the committed `schema.d.ts` (regenerate both with
`make typescript` after changing the API). Then `tsc --noEmit` compiles `usage.ts` against the types: the
four send shapes, chunk narrowing, operation parameters and answers.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from scripts.openapi_types import GENERATOR, TYPESCRIPT, dump, generate
from tests.support.conformance import NODE
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.node]

TSC = TYPESCRIPT / "node_modules" / ".bin" / "tsc"


def require_tools() -> None:
    if NODE is None:
        pytest.skip("node is not installed")
    if not (GENERATOR.exists() and TSC.exists()):
        pytest.fail("clients/typescript/node_modules is missing: run `make node`", pytrace=False)


@pytest.fixture(scope="module")
def served() -> str:
    require_tools()
    with ServerProcess() as server:
        return dump(httpx.get(f"{server.url}/schema/openapi.json", timeout=10).json())


def test_the_committed_document_is_the_served_one(served: str) -> None:
    committed = (TYPESCRIPT / "openapi.json").read_text()
    assert json.loads(committed) == json.loads(served), "clients/typescript is stale: run `make typescript`"
    assert committed == served


@pytest.mark.timeout(120)
def test_the_types_regenerate_to_the_committed_ones(served: str, tmp_path: Path) -> None:
    source, target = tmp_path / "openapi.json", tmp_path / "schema.d.ts"
    source.write_text(served)
    generate(source, target)
    assert target.read_text() == (TYPESCRIPT / "schema.d.ts").read_text(), "run `make typescript`"


@pytest.mark.timeout(120)
def test_the_types_compile() -> None:
    require_tools()
    done = subprocess.run(
        [str(TSC), "--noEmit", "-p", "."], cwd=TYPESCRIPT, capture_output=True, text=True, timeout=110, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
