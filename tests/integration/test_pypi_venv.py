"""The pinned PyPI virtualenv itself: present, made from the file in the tree, holding
exactly the pinned releases, isolated from the system's packages. When it is missing
the first test fails with what to run; the framework modules fail with the same words."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess

from venv_util import pins, require_venv, site_packages


def test_venv_is_built_from_the_pinned_file():
    venv = require_venv()
    assert (venv / "bin" / "python").exists()


def test_venv_holds_exactly_the_pinned_releases():
    site = site_packages(require_venv())
    installed = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version
                 for d in importlib.metadata.distributions(path=[str(site)])}
    # pip and setuptools come with `python -m venv`, not from the file.
    for tool in ("pip", "setuptools"):
        installed.pop(tool, None)
    assert installed == pins()


def test_venv_does_not_see_the_system_packages():
    cfg = (require_venv() / "pyvenv.cfg").read_text()
    assert re.search(r"^include-system-site-packages\s*=\s*false\s*$", cfg, re.M), cfg


def test_pinned_clang_format_runs():
    out = subprocess.run([str(require_venv() / "bin" / "clang-format"), "--version"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert f"clang-format version {pins()['clang-format']}" in out, out
