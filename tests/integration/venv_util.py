"""The pinned PyPI virtualenv that the test_pypi_*.py modules serve their apps from.

`make venv` creates it (tests/requirements/make_venv.sh) from
tests/requirements/frameworks.txt; `make integration` and `make asan` pass its path in
NARWHAL_TEST_VENV. Without the variable the tests look in build/venv, where `make venv`
puts it by default.

A missing or stale venv is a failure that says what to run, never a skip: these tests
are the only ones that exercise current framework releases.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import pytest

from conftest import APPS_DIR, ROOT, Server, serving

REQUIREMENTS = ROOT / "tests" / "requirements" / "frameworks.txt"
PYPI_APPS = APPS_DIR / "pypi"
STAMP = ".narwhal-requirements"  # written by make_venv.sh once every package is in


def venv_path() -> Path:
    return Path(os.environ.get("NARWHAL_TEST_VENV") or ROOT / "build" / "venv")


def venv_problem() -> str | None:
    """Why the venv cannot be used (None when it can)."""
    venv = venv_path()
    fix = ("Run `make venv` (it downloads the pinned wheels from PyPI: this machine must reach "
           "PyPI), or point NARWHAL_TEST_VENV at a venv made from that file.")
    stamp = venv / STAMP
    if not stamp.is_file():
        return (f"The pinned PyPI virtualenv is missing or incomplete at {venv} (no {STAMP}): "
                f"the current-framework tests need it, built from {REQUIREMENTS.name}. {fix}")
    made_from = stamp.read_text().split()
    want = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if not made_from or made_from[0] != want:
        return (f"The virtualenv at {venv} was made from another version of "
                f"{REQUIREMENTS.name} than the one in the tree. {fix}")
    site = site_packages(venv)
    if not site.is_dir():
        return (f"The virtualenv at {venv} has no {site.relative_to(venv)}: it was made by another "
                f"Python than the one narwhal embeds ({sys.version.split()[0]}). {fix}")
    return None


def require_venv() -> Path:
    """The venv's path, or fail the calling test (or fixture) with what to do."""
    problem = venv_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    return venv_path()


def site_packages(venv: Path) -> Path:
    # The tests run on the interpreter narwhal embeds (Debian's python3), so its version
    # names the venv's site-packages.
    return venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@lru_cache(maxsize=1)
def pins() -> dict[str, str]:
    """Package name -> pinned version, from frameworks.txt. Lines with an environment
    marker (Windows-only packages) are left out: a package pinned twice for different
    interpreters would be ambiguous here, and frameworks.in keeps the frameworks to one."""
    found: dict[str, str] = {}
    for line in REQUIREMENTS.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(;)?", line)
        if m and not m.group(3):
            name = _normalise(m.group(1))
            assert name not in found, f"{name} is pinned twice in {REQUIREMENTS.name}"
            found[name] = m.group(2)
    return found


def pinned(dist: str) -> str:
    version = pins().get(_normalise(dist))
    assert version, f"{dist} is not pinned (without a marker) in {REQUIREMENTS.name}"
    return version


def serve_pypi(app: str, *args: str, via: str = "flag", env: dict[str, str] | None = None,
               **kw) -> Iterator[Server]:
    """For module-scoped fixtures: serve `app` from tests/integration/apps/pypi with the
    venv's packages, named by `--venv` (via="flag") or by $VIRTUAL_ENV (via="env")."""
    venv = require_venv()
    env = dict(env or {})
    if via == "flag":
        args = ("--venv", str(venv), *args)
    else:
        assert via == "env", via
        env["VIRTUAL_ENV"] = str(venv)
    kw.setdefault("app_dir", PYPI_APPS)
    yield from serving(app, *args, env=env, **kw)


def assert_from_venv(report: dict, dist: str) -> None:
    """`report` is what an app's /version returns for one package (pypi_report.describe):
    the version must be the pinned one, and both the module and its metadata must come
    from the venv, not from the system's dist-packages."""
    site = os.path.realpath(site_packages(venv_path()))
    assert report["dist"] == dist
    assert report["version"] == pinned(dist), report
    assert os.path.realpath(report["file"]).startswith(site + os.sep), report
    assert os.path.realpath(report["metadata"]) == site, report
