"""The wheel, as a user gets it: built from this checkout, installed with its core dependencies only.

Builds the wheel (`python -m build --wheel`), checks what it ships (`chatstream/` with `py.typed`, the Lua
scripts and the Alembic migrations; no standalone `app/`, tests, benchmarks or examples), installs it into a
fresh venv without extras (litestar, msgspec, httpx) and checks there that the library imports, serves a chat
with the mock provider, and refuses a provider or a DATABASE_URL whose extra is missing with the
`pip install 'chatstream[...]'` hint.

The footprint (wheel size, `import chatstream` time, installed distributions) is printed (`pytest -s`) and
written to `.pytest_cache/footprint.json`.

Needs network access to PyPI (or pip's cache) for hatchling and the core dependencies.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOOTPRINT = ROOT / ".pytest_cache" / "footprint.json"
# Top-level packages of the optional extras: none may be importable from a core install.
EXTRA_MODULES: tuple[str, ...] = ("redis", "openai", "anthropic", "uvicorn", "jwt", "httpx2", "a2wsgi")
EXTRA_MODULES += ("sqlalchemy", "alembic", "aiosqlite", "asyncpg")
# The only modules that may need an extra: the Redis backends, the SQL store's modules (not its package, which
# names the missing extra) and the SDK-backed provider adapters.
EXTRA_ONLY = re.compile(
    r"chatstream\.(redis_client|\w+\.redis(_\w+)?|store\.sql\.\w+|providers\.(openai_compat|anthropic|_\w+))"
)
# Standalone server and repository-only directories: never in the wheel.
NOT_SHIPPED = ("app", "tests", "bench", "examples", "scripts", "docs", "deploy")

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(300)]


def _env() -> dict[str, str]:
    """This environment without anything that would leak the checkout or a configuration into the venv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "CHAT_", "VIRTUAL_ENV"))
        and not k.endswith(("_API_KEY", "_BASE_URL", "_MODEL"))
        and k not in ("REDIS_URL", "HOST", "PORT")
    }
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _run(cmd: list[str], *, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


class CoreVenv:
    """A fresh venv holding the wheel and its core dependencies, nothing else."""

    def __init__(self, path: Path, work: Path) -> None:
        self.path = path
        self.python = path / "bin" / "python"
        self.work = work  # cwd of every probe: not the checkout, so the source tree cannot be imported

    def probe(self, code: str) -> Any:
        """Run `code` in the venv (isolated mode: no cwd, no script dir, no user site on sys.path); it
        prints one JSON document as its last line, returned here."""
        script = self.work / "probe.py"
        script.write_text(textwrap.dedent(code))
        proc = _run([str(self.python), "-I", str(script)], cwd=self.work, timeout=60)
        lines = proc.stdout.strip().splitlines()
        assert lines, f"probe printed nothing\n{proc.stderr}"
        return json.loads(lines[-1])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)], cwd=ROOT)
    wheels = list(out.glob("chatstream-*.whl"))
    assert len(wheels) == 1, f"expected one wheel in {out}, got {sorted(p.name for p in out.iterdir())}"
    return wheels[0]


@pytest.fixture(scope="module")
def core_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> CoreVenv:
    base = tmp_path_factory.mktemp("core")
    venv = CoreVenv(base / "venv", base)
    _run([sys.executable, "-m", "venv", str(venv.path)], cwd=base)
    # No extras: exactly what `pip install chatstream` gives. pip's cache is used.
    _run([str(venv.python), "-m", "pip", "install", "--disable-pip-version-check", str(wheel)], cwd=base)
    return venv


def _core_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_dist_name(req) for req in project["dependencies"]}


def _dist_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def test_wheel_ships_the_library_only(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        dist_info = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
        metadata = zf.read(f"{dist_info}/METADATA").decode()

    top = {n.split("/")[0] for n in names}
    assert not top & set(NOT_SHIPPED), f"the wheel ships {sorted(top & set(NOT_SHIPPED))}"
    assert top == {"chatstream", dist_info}, f"unexpected top-level entries: {sorted(top - {dist_info})}"
    assert "chatstream/__init__.py" in names
    assert "chatstream/py.typed" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]

    source = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "chatstream").rglob("*")
        if p.is_file() and p.suffix in (".py", ".lua", ".typed") and "__pycache__" not in p.parts
    }
    lua = {n for n in source if n.endswith(".lua")}
    assert lua, "no Lua scripts found under chatstream/*/lua/"
    assert all(re.fullmatch(r"chatstream/[a-z_]+/lua/[a-z_]+\.lua", n) for n in lua), sorted(lua)
    missing = source - names
    assert not missing, f"in chatstream/ but not in the wheel: {sorted(missing)}"
    migrations = "chatstream/store/sql/migrations/"
    assert {f"{migrations}env.py", f"{migrations}script.py.mako"} <= names
    assert any(n.startswith(f"{migrations}versions/") and n.endswith(".py") for n in names)

    # The wheel's unconditional requirements are exactly pyproject's [project].dependencies.
    requires = [v for k, v in re.findall(r"^(Requires-Dist): (.+)$", metadata, re.M)]
    core = {_dist_name(r) for r in requires if "extra ==" not in r}
    assert core == _core_dependencies(), requires


def test_core_install_has_no_extras(core_venv: CoreVenv) -> None:
    result = core_venv.probe(
        f"""
        import importlib, importlib.util, json, pkgutil, sys, sysconfig

        import chatstream

        extras = {EXTRA_MODULES!r}
        importable = [m for m in extras + ("app",) if importlib.util.find_spec(m) is not None]
        # Every module of the package: those needing an extra may fail, but only for want of that extra.
        failures = {{}}
        for info in pkgutil.walk_packages(chatstream.__path__, "chatstream."):
            try:
                importlib.import_module(info.name)
            except ModuleNotFoundError as exc:
                failures[info.name] = [info.ispkg, exc.name]
            except Exception as exc:
                failures[info.name] = [info.ispkg, repr(exc)]
        print(json.dumps({{
            "file": chatstream.__file__,
            "purelib": sysconfig.get_paths()["purelib"],
            "importable": importable,
            "failures": failures,
        }}))
        """
    )
    assert result["file"].startswith(result["purelib"]), f"chatstream imported from {result['file']}"
    assert result["importable"] == [], f"importable in a core install: {result['importable']}"
    wrong = {
        name: why
        for name, (ispkg, why) in result["failures"].items()
        if ispkg or not EXTRA_ONLY.fullmatch(name) or (why or "").split(".")[0] not in EXTRA_MODULES
    }
    assert not wrong, f"modules that do not import in a core install (module: missing import): {wrong}"


def test_core_install_serves_a_chat(core_venv: CoreVenv) -> None:
    result = core_venv.probe(
        """
        import json, sys

        from litestar.testing import TestClient

        from chatstream import Settings, create_app
        from chatstream.settings import AuthToken, Secret

        app = create_app(Settings(auth_tokens=(AuthToken(token=Secret("t"), user_id="u"),), mock_provider=True))
        with TestClient(app) as client:
            r = client.post(
                "/api/chat",
                json={"parts": [{"type": "text", "text": "mock:tokens=3"}]},
                headers={"Authorization": "Bearer t"},
            )
        data = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
        chunks = [json.loads(d) for d in data if d != "[DONE]"]
        print(json.dumps({
            "status": r.status_code,
            "content_type": r.headers.get("content-type", ""),
            "types": [c.get("type") for c in chunks],
            "text": "".join(c["delta"] for c in chunks if c.get("type") == "text-delta"),
            "done": data[-1:] == ["[DONE]"],
            "body": r.text[:2000],
            "extras_loaded": sorted({m.split(".")[0] for m in sys.modules} & {"redis", "openai", "anthropic"}),
        }))
        """
    )
    assert result["status"] == 200, result["body"]
    assert result["content_type"].startswith("text/event-stream"), result["content_type"]
    assert result["text"] == "t0 t1 t2 ", result["body"]
    assert result["types"][0] == "start", result["types"]
    assert result["types"][-1] == "finish", result["types"]
    assert result["done"], result["body"]
    assert result["extras_loaded"] == []


@pytest.mark.parametrize(
    ("var", "value", "extra"),
    [
        ("OPENAI_API_KEY", "secret-1", "openai"),
        ("ANTHROPIC_API_KEY", "secret-1", "anthropic"),
        ("CHAT_JWT_SECRET", "secret-1", "jwt"),
        ("DATABASE_URL", "sqlite+aiosqlite:///chat.db", "sqlite"),
        ("DATABASE_URL", "postgresql+asyncpg://db/chat", "postgres"),
    ],
)
def test_missing_extra_fails_at_startup_with_install_hint(
    core_venv: CoreVenv, var: str, value: str, extra: str
) -> None:
    result = core_venv.probe(
        f"""
        import json

        from litestar.testing import TestClient

        from chatstream import Settings, create_app
        from chatstream.errors import ConfigError


        def config_errors(exc):
            # TestClient runs the lifespan in a task group, so the error may come wrapped in an ExceptionGroup.
            if isinstance(exc, ConfigError):
                yield exc
            for inner in getattr(exc, "exceptions", ()):
                yield from config_errors(inner)
            if exc.__cause__ is not None:
                yield from config_errors(exc.__cause__)


        # The mock provider too, so that nothing but the missing extra can stop the start-up.
        settings = Settings.from_env({{"{var}": "{value}", "CHAT_AUTH_TOKENS": "t:u", "CHAT_MOCK_PROVIDER": "true"}})
        try:
            with TestClient(create_app(settings)):
                pass
        except BaseException as exc:
            print(json.dumps({{"raised": repr(exc), "config_errors": [str(e) for e in config_errors(exc)]}}))
        else:
            print(json.dumps({{"raised": None, "config_errors": []}}))
        """
    )
    assert result["raised"] is not None, f"the app started with {var} set and no {extra} extra installed"
    hint = f"pip install 'chatstream[{extra}]'"
    assert any(hint in message for message in result["config_errors"]), (
        f"expected a ConfigError saying {hint!r}, got {result['raised']}"
    )


def test_footprint(wheel: Path, core_venv: CoreVenv) -> None:
    python = str(core_venv.python)
    cwd = core_venv.work
    _run([python, "-I", "-c", "import chatstream"], cwd=cwd)  # warm the OS cache

    def best_of(code: str, runs: int = 5) -> float:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            _run([python, "-I", "-c", code], cwd=cwd)
            times.append(time.perf_counter() - start)
        return min(times)

    startup = best_of("pass")
    with_import = best_of("import chatstream")
    importtime = _run([python, "-I", "-X", "importtime", "-c", "import chatstream"], cwd=cwd).stderr
    cumulative = [int(m) for m in re.findall(r"^import time:\s+\d+ \|\s+(\d+) \| chatstream$", importtime, re.M)]
    assert len(cumulative) == 1, importtime[-2000:]

    freeze = _run([python, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"], cwd=cwd)
    distributions = sorted(line for line in freeze.stdout.splitlines() if line.strip())
    purelib = core_venv.probe('import json, sysconfig; print(json.dumps(sysconfig.get_paths()["purelib"]))')
    site_bytes = sum(p.stat().st_size for p in Path(purelib).rglob("*") if p.is_file())

    footprint = {
        "wheel": wheel.name,
        "wheel_bytes": wheel.stat().st_size,
        "import_chatstream_seconds_min": round(with_import, 4),
        "interpreter_startup_seconds_min": round(startup, 4),
        "import_chatstream_net_seconds": round(with_import - startup, 4),
        "import_chatstream_importtime_cumulative_us": cumulative[0],
        "site_packages_bytes": site_bytes,
        "distributions": distributions,
        "python": sys.version.split()[0],
    }
    FOOTPRINT.parent.mkdir(exist_ok=True)
    FOOTPRINT.write_text(json.dumps(footprint, indent=2) + "\n")
    print("\nfootprint:", json.dumps(footprint, indent=2))

    names = {_dist_name(d.split("==")[0]) for d in distributions}
    assert "chatstream" in names
    assert _core_dependencies() <= names
    extras = {
        "redis",
        "openai",
        "anthropic",
        "uvicorn",
        "pyjwt",
        "httpx2",
        "a2wsgi",
        "sqlalchemy",
        "alembic",
        "asyncpg",
    }
    assert not names & extras, f"extras installed in the core venv: {sorted(names & extras)}"
