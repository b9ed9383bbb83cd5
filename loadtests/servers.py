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

A name may add process and interpreter counts (`parse_variant`): `-wN` runs N worker
processes (narwhal: a master process and `--workers N`; uvicorn and granian: their
`--workers N`), `-iM` runs M interpreters per process (narwhal's `--interpreters M`,
which needs CPython 3.12+), and `-tN` sets narwhal's `--io-threads N` (0: the
interpreter's thread does the I/O; without it narwhal's default, auto). `narwhal-w2`,
`uvicorn-pypi-w2`, `granian-w2`, `narwhal-i2`, `narwhal-w2-i2` and `narwhal-w2-t1` run
in the same interleaved run as the plain names.

The virtualenv (`--venv`, default build/venv, made by `make venv` from pinned
requirements) runs on the same Debian interpreter: the venv's python is a symlink to
/usr/bin/python3, so only the packages differ.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from harness import HOST, PYTHON, REPO, rel
from scenarios import Scenario
from tls import TlsFiles

ALL_SERVERS = ("narwhal", "uvicorn", "uvicorn-pypi", "granian", "beast")
VENV_SERVERS = ("uvicorn-pypi", "granian")
DEFAULT_VENV = REPO / "build" / "venv"
APP_DIR = "loadtests/apps"
# the servers a -wN suffix applies to (beast is one process, one thread by design)
MULTI_PROCESS = ("narwhal", "uvicorn", "uvicorn-pypi", "granian")
INTERPRETERS_SINCE = (3, 12)  # own-GIL sub-interpreters (PEP 684)


def uvicorn_flags(workers: int = 1) -> list[str]:
    """uvicorn's fastest settings; the same for Debian's and the PyPI release. With
    --workers 1 uvicorn stays one process; with more, a parent process supervises them."""
    return ["--loop", "uvloop", "--http", "httptools", "--no-access-log",
            "--workers", str(workers)]


def granian_flags(workers: int = 1) -> list[str]:
    """granian's fastest single-worker settings for these apps (why each:
    loadtests/README.md), with `workers` worker processes. `--log-level info` prints
    nothing per request (the access log is off) but the `Started worker-N runtime-M`
    lines that tell when each worker serves (`ready_log`)."""
    return ["--interface", "asgi", "--workers", str(workers), "--runtime-mode", "st",
            "--runtime-threads", "1", "--loop", "uvloop", "--task-impl", "rust",
            "--http", "1", "--no-ws", "--no-access-log", "--log-level", "info"]


_VARIANT = re.compile(r"^(?P<base>" + "|".join(sorted(ALL_SERVERS, key=len, reverse=True))
                      + r")(?:-w(?P<workers>\d+))?(?:-i(?P<interpreters>\d+))?(?:-t(?P<io>\d+))?$")


@dataclass(frozen=True)
class Variant:
    """A server name as given in --servers: the server, and how many processes and
    interpreters it runs. workers None: the server's single-process default (for
    narwhal: no master process; `narwhal-w1` is a master with one worker)."""
    name: str
    base: str
    workers: Optional[int] = None
    interpreters: Optional[int] = None
    io_threads: Optional[int] = None  # narwhal's --io-threads; None: its default (auto)

    @property
    def processes(self) -> int:
        """Worker processes that serve requests (a master or supervisor not counted)."""
        return self.workers or 1


def parse_variant(name: str) -> Variant:
    """`narwhal-w2-i2` -> Variant(base narwhal, 2 workers, 2 interpreters); ValueError
    for an unknown server, a zero count or a suffix the server does not have."""
    m = _VARIANT.match(name)
    if not m:
        raise ValueError(f"unknown server {name!r}: one of {', '.join(ALL_SERVERS)}, "
                         f"optionally with -wN (worker processes) and -iM (narwhal: "
                         f"interpreters), e.g. narwhal-w2, granian-w2, narwhal-i2")
    base = m["base"]
    workers = int(m["workers"]) if m["workers"] else None
    interpreters = int(m["interpreters"]) if m["interpreters"] else None
    io_threads = int(m["io"]) if m["io"] is not None else None
    if workers == 0 or interpreters == 0:
        raise ValueError(f"{name}: counts start at 1 (plain {base} is the single-process "
                         f"default)")
    if workers is not None and base not in MULTI_PROCESS:
        raise ValueError(f"{name}: {base} runs one process only")
    if interpreters is not None and base != "narwhal":
        raise ValueError(f"{name}: -iM (interpreters per process) is narwhal's only")
    if io_threads is not None and base != "narwhal":
        raise ValueError(f"{name}: -tN (I/O threads per process) is narwhal's only")
    return Variant(name, base, workers, interpreters, io_threads)


def base_of(server: str) -> str:
    return parse_variant(server).base


def ready_log(server: str) -> Optional[tuple[str, int]]:
    """(regex, count): the server serves once its log has `count` lines matching regex
    (distinct first groups, when the regex has one), beside owning its listener. A
    master or supervisor binds the socket before its workers serve, so the listener
    alone proves only that the first worker will answer eventually; each server's own
    per-worker ready line proves that every worker does. None: the listener suffices."""
    v = parse_variant(server)
    if v.base == "narwhal" and v.workers:
        return r"Worker process \[(\d+)\] is ready", v.workers  # the master's line
    if v.base.startswith("uvicorn") and v.processes > 1:
        # each worker logs it after its lifespan startup, then starts accepting at once
        return r"Application startup complete\.", v.processes
    if v.base == "granian":
        # the Rust runtime's line once a worker serves (after its lifespan startup)
        return r"Started worker-(\d+) runtime-", v.processes
    return None

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
    granian_args: str = ""  # appended to granian_flags(): a later flag wins (click)
    tls: Optional[TlsFiles] = None  # every server serves HTTPS with this certificate

    @property
    def venv_python(self) -> str:
        return unresolved(self.venv / "bin" / "python")


def unresolved(path: Path) -> str:
    """Like harness.rel, but keeps symlinks: a venv's bin/python links to /usr/bin/python3,
    and only started through the link does Python find the venv (pyvenv.cfg)."""
    path = Path(os.path.abspath(path))
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def uses_venv(server: str, scenario: Scenario) -> bool:
    base = base_of(server)
    return base in VENV_SERVERS or (base == "narwhal" and scenario.framework is not None)


def tls_flags(base: str, tls: Optional[TlsFiles]) -> list[str]:
    """The certificate options: uvicorn's names (narwhal has the same), granian's own."""
    if tls is None:
        return []
    if base == "granian":
        return ["--ssl-keyfile", str(tls.key), "--ssl-certificate", str(tls.cert)]
    return ["--ssl-keyfile", str(tls.key), "--ssl-certfile", str(tls.cert)]


def narwhal_has_tls(binary: Path) -> bool:
    """Whether this narwhal build serves TLS (`--help` lists --ssl-certfile)."""
    try:
        out = subprocess.run([str(binary), "--help"], cwd=REPO, capture_output=True,
                             text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "--ssl-certfile" in out


def tls_skip_reason(server: str, narwhal_tls: bool) -> Optional[str]:
    """Why this server does not run over TLS, or None when it does."""
    base = base_of(server)
    if base == "beast":
        return "the bare server has no TLS"
    if base == "narwhal" and not narwhal_tls:
        return "this narwhal binary lists no --ssl-certfile in --help (no TLS, or it does not run)"
    return None


def server_argv(server: str, scenario: Scenario, port: int, setup: Setup) -> list[str]:
    v = parse_variant(server)
    target = f"{scenario.module}:app"
    tls = tls_flags(v.base, setup.tls)  # before the extra arguments, which may override them
    if v.base == "narwhal":
        venv = ["--venv", unresolved(setup.venv)] if uses_venv(server, scenario) else []
        workers = ["--workers", str(v.workers)] if v.workers else []
        interpreters = ["--interpreters", str(v.interpreters)] if v.interpreters else []
        io_threads = ["--io-threads", str(v.io_threads)] if v.io_threads is not None else []
        return [rel(setup.narwhal_bin), target, "--app-dir", APP_DIR, "--host", HOST,
                "--port", str(port), "--no-access-log", *workers, *interpreters, *io_threads, *venv,
                *tls, *shlex.split(setup.narwhal_args)]
    if v.base in ("uvicorn", "uvicorn-pypi"):
        python = PYTHON if v.base == "uvicorn" else setup.venv_python
        return [python, "-m", "uvicorn", target, "--app-dir", APP_DIR, "--host", HOST,
                "--port", str(port), *uvicorn_flags(v.processes), *tls]
    if v.base == "granian":
        return [setup.venv_python, "-m", "granian", *granian_flags(v.processes),
                "--working-dir", APP_DIR, "--host", HOST, "--port", str(port), *tls,
                *shlex.split(setup.granian_args), target]
    if v.base == "beast":
        return [rel(setup.beast_bin), HOST, str(port)]
    raise ValueError(server)


def narwhal_python(binary: Path) -> Optional[tuple[int, int]]:
    """The CPython version a narwhal binary embeds (`narwhal --version`: "... with
    CPython 3.11.2"), None when it cannot be asked."""
    try:
        out = subprocess.run([str(binary), "--version"], cwd=REPO, capture_output=True,
                             text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"CPython (\d+)\.(\d+)", out)
    return (int(m[1]), int(m[2])) if m else None


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
    if base_of(server) == "beast":
        return None
    return "venv" if uses_venv(server, scenario) else "debian"


def skip_reason(server: str, scenario: Scenario, envs: dict[str, dict],
                embedded: Optional[tuple[int, int]] = None) -> Optional[str]:
    """Why this server does not run this scenario, or None when it does. `embedded`: the
    CPython narwhal embeds (narwhal_python), which decides whether -iM (M > 1) runs."""
    v = parse_variant(server)
    if v.base == "beast" and scenario.name != "plaintext":
        return "the bare server only answers plaintext"
    if (v.interpreters or 1) > 1 and (embedded is None or embedded < INTERPRETERS_SINCE):
        have = f"CPython {embedded[0]}.{embedded[1]}" if embedded else "an unknown CPython"
        return (f"--interpreters {v.interpreters} needs CPython "
                f"{INTERPRETERS_SINCE[0]}.{INTERPRETERS_SINCE[1]}+; this narwhal embeds {have}")
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
