"""The servers the HTTP comparisons run: command lines, environments, what each may run.

Shared by compare.py and instructions.py. Not a script itself.

* narwhal       the binary under test (Debian's CPython 3.11, embedded); framework
                scenarios get `--venv`, so the app imports the virtualenv's Starlette,
                FastAPI and pydantic (and its uvloop) like the two servers below
* uvicorn       Debian's uvicorn 0.17 on Debian's python3, with Debian's Starlette
* uvicorn-pypi  current uvicorn from the virtualenv (httptools + uvloop)
* granian       current granian from the virtualenv, ASGI interface, one worker
* beast         a bare Boost.Beast keep-alive server without Python (plaintext only):
                the floor for the socket work alone

The virtualenv (`--venv`, default build/venv, made by `make venv` from pinned
requirements) runs on the same Debian interpreter: the venv's python is a symlink to
/usr/bin/python3, so only the packages differ.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from harness import HOST, PYTHON, REPO, rel
from scenarios import Scenario

ALL_SERVERS = ("narwhal", "uvicorn", "uvicorn-pypi", "granian", "beast")
VENV_SERVERS = ("uvicorn-pypi", "granian")
DEFAULT_VENV = REPO / "build" / "venv"
APP_DIR = "loadtests/apps"

# uvicorn's fastest single-process settings; the same for Debian's and the PyPI release.
UVICORN_FLAGS = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--workers", "1"]

# granian's fastest single-worker settings for these apps (why each: loadtests/README.md).
GRANIAN_FLAGS = ["--interface", "asgi", "--workers", "1", "--runtime-mode", "st",
                 "--runtime-threads", "1", "--loop", "uvloop", "--task-impl", "rust",
                 "--http", "1", "--no-ws", "--no-access-log", "--log-level", "warning"]

# What each environment is asked about (distribution names; import names may differ).
PACKAGES = ("uvicorn", "granian", "starlette", "fastapi", "pydantic", "pydantic-core",
            "anyio", "uvloop", "httptools")
_PROBE = """\
import json, sys
from importlib import metadata
found = {"python": sys.version.split()[0]}
for name in sys.argv[1:]:
    try:
        found[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        found[name] = None
print(json.dumps(found))
"""


@dataclass
class Setup:
    """Where the servers come from (the command-line options that name them)."""
    narwhal_bin: Path
    narwhal_args: str = ""
    beast_bin: Path = REPO / "build" / "bare_beast" / "bare_beast"
    venv: Path = DEFAULT_VENV
    granian_args: str = ""  # appended to GRANIAN_FLAGS: a later flag wins (click)

    @property
    def venv_python(self) -> str:
        return unresolved(self.venv / "bin" / "python")


def unresolved(path: Path) -> str:
    """Like harness.rel, but keeps symlinks: a venv's bin/python links to /usr/bin/python3,
    and only started through the link does Python find the venv (pyvenv.cfg)."""
    path = Path(os.path.abspath(path))
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def uses_venv(server: str, scenario: Scenario) -> bool:
    return server in VENV_SERVERS or (server == "narwhal" and scenario.framework is not None)


def server_argv(server: str, scenario: Scenario, port: int, setup: Setup) -> list[str]:
    target = f"{scenario.module}:app"
    if server == "narwhal":
        venv = ["--venv", unresolved(setup.venv)] if uses_venv(server, scenario) else []
        return [rel(setup.narwhal_bin), target, "--app-dir", APP_DIR, "--host", HOST,
                "--port", str(port), "--no-access-log", *venv, *shlex.split(setup.narwhal_args)]
    if server in ("uvicorn", "uvicorn-pypi"):
        python = PYTHON if server == "uvicorn" else setup.venv_python
        return [python, "-m", "uvicorn", target, "--app-dir", APP_DIR, "--host", HOST,
                "--port", str(port), *UVICORN_FLAGS]
    if server == "granian":
        return [setup.venv_python, "-m", "granian", *GRANIAN_FLAGS, "--working-dir", APP_DIR,
                "--host", HOST, "--port", str(port), *shlex.split(setup.granian_args), target]
    if server == "beast":
        return [rel(setup.beast_bin), HOST, str(port)]
    raise ValueError(server)


def ensure_beast(binary: Path) -> None:
    """Builds the bare Beast server (a standalone CMake project) when it is missing."""
    if binary.exists():
        return
    build = rel(binary.parent)
    for cmd in (["cmake", "-S", "loadtests/bare_beast", "-B", build,
                 "-DCMAKE_BUILD_TYPE=Release"],
                ["cmake", "--build", build]):
        print(f"$ {shlex.join(cmd)}", flush=True)
        subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)


def probe_versions(python: str) -> dict[str, Optional[str]]:
    """Package versions an interpreter sees ({} when it cannot run)."""
    try:
        out = subprocess.run([python, "-c", _PROBE, *PACKAGES], cwd=REPO, capture_output=True,
                             text=True, timeout=60, check=True).stdout
        return json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError):
        return {}


def environments(setup: Setup, need_venv: bool) -> dict[str, dict]:
    """{"debian": versions, "venv": versions} (venv only when some run needs it)."""
    envs = {"debian": probe_versions(PYTHON)}
    if need_venv:
        envs["venv"] = probe_versions(setup.venv_python)
    return envs


def environment_of(server: str, scenario: Scenario) -> Optional[str]:
    """Whose packages the app imports in this run: "venv", "debian", or None (no Python)."""
    if server == "beast":
        return None
    return "venv" if uses_venv(server, scenario) else "debian"


def skip_reason(server: str, scenario: Scenario, envs: dict[str, dict]) -> Optional[str]:
    """Why this server does not run this scenario, or None when it does."""
    if server == "beast" and scenario.name != "plaintext":
        return "the bare server only answers plaintext"
    if environment_of(server, scenario) == "debian" and scenario.framework == "fastapi":
        debian = envs.get("debian", {})
        pydantic = debian.get("pydantic")
        if pydantic is None or int(pydantic.split(".")[0]) < 2:
            return (f"Debian's FastAPI {debian.get('fastapi') or '(none)'} is built on pydantic "
                    f"{pydantic or '(none)'}; the app needs pydantic v2")
    return None


def version_mismatch(reported: dict, expected: dict) -> Optional[str]:
    """Compares an app's GET /versions answer with its environment's versions."""
    wrong = [f"{name} {got} (expected {expected.get(name)})"
             for name, got in reported.items()
             if name in ("starlette", "fastapi", "pydantic") and got != expected.get(name)]
    return "imported " + ", ".join(wrong) if wrong else None


def describe(envs: dict[str, dict]) -> list[str]:
    """One line per environment: the versions that matter, for reports."""
    lines = []
    for env, found in envs.items():
        names = ("uvicorn", "starlette", "fastapi", "pydantic", "uvloop", "httptools")
        if env == "venv":
            names = ("uvicorn", "granian") + names[1:]
        parts = ", ".join(f"{n} {found.get(n)}" for n in names if found.get(n))
        who = "Debian's /usr/bin/python3" if env == "debian" else "the virtualenv"
        lines.append(f"{who} (Python {found.get('python', '?')}): {parts or 'not found'}")
    return lines
