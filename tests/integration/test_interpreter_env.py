"""The interpreter looks like `python` to the app: sys.executable runs Python (also for
multiprocessing's spawn), and a virtualenv named by --venv or $VIRTUAL_ENV is set up
the way `venv/bin/python` sets it up, pyvenv.cfg included."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import APPS_DIR, run_cli

TIMEOUT = httpx.Timeout(60.0)  # /spawn starts a fresh interpreter
SERVE_ARGS = ("--app-dir", str(APPS_DIR), "--host", "127.0.0.1", "--port", "0")
SYSTEM_PACKAGES = "/usr/lib/python3/dist-packages"  # Debian's, where apt puts modules


def _get(server, path: str):
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        r = c.get(path)
    assert r.status_code == 200, server.log()
    return r.json()


def _python_says(executable: str, expr: str):
    out = subprocess.run([executable, "-c", f"import json, sys; print(json.dumps({expr}))"],
                         capture_output=True, text=True, timeout=60, check=True,
                         stdin=subprocess.DEVNULL, env={k: v for k, v in os.environ.items()
                                                       if k not in ("VIRTUAL_ENV", "PYTHONPATH")})
    return json.loads(out.stdout)


def _app_path(paths: dict) -> list[str]:
    """sys.path without the app directory narwhal puts first (as python puts the script's)."""
    assert paths["path"][0] == str(APPS_DIR), paths
    return paths["path"][1:]


def _make_venv(where: Path, system_site: bool) -> Path:
    args = [sys.executable, "-m", "venv", "--without-pip", str(where)]
    if system_site:
        args.insert(-1, "--system-site-packages")
    subprocess.run(args, check=True, timeout=120, stdin=subprocess.DEVNULL)
    return where


def test_sys_executable_is_the_installation_python(narwhal):
    server = narwhal("process_apps:app")
    paths = _get(server, "/paths")
    exe = paths["executable"]
    assert os.path.basename(exe).startswith("python"), paths
    assert paths["base_executable"] == exe, paths
    # The same installation: it reports the same version and prefix as the app's.
    assert _python_says(exe, "[list(sys.version_info[:3]), sys.prefix]") == \
        [paths["version"], paths["prefix"]]
    child = _get(server, "/child")
    assert child["returncode"] == 0, child
    assert child["stdout"] == str(tuple(paths["version"][:2])), child


def test_spawned_process_pool_works_from_a_request(narwhal):
    server = narwhal("process_apps:app")
    assert _get(server, "/spawn") == [4, 9], server.log()


@pytest.mark.parametrize("system_site", [False, True], ids=["isolated", "system-site-packages"])
@pytest.mark.parametrize("via", ["flag", "env"])
def test_venv_is_set_up_as_its_python_does(narwhal, tmp_path, system_site, via):
    venv = _make_venv(tmp_path / "venv", system_site)
    if via == "flag":
        server = narwhal("process_apps:app", "--venv", str(venv))
    else:
        server = narwhal("process_apps:app", env={"VIRTUAL_ENV": str(venv)})
    paths = _get(server, "/paths")
    assert paths["executable"] == str(venv / "bin" / "python"), paths
    assert paths["prefix"] == str(venv), paths
    python = _python_says(str(venv / "bin" / "python"),
                          "dict(path=sys.path[1:], base_executable=sys._base_executable, "
                          "base_prefix=sys.base_prefix)")
    assert paths["base_executable"] == python["base_executable"], paths
    assert paths["base_prefix"] == python["base_prefix"], paths
    # pyvenv.cfg's include-system-site-packages decides, as for the venv's own python.
    assert _app_path(paths) == python["path"]
    assert (SYSTEM_PACKAGES in paths["path"]) == system_site, paths
    assert str(venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" /
               "site-packages") in paths["path"], paths
    child = _get(server, "/child")
    assert child["returncode"] == 0, child
    assert _get(server, "/spawn") == [4, 9], server.log()


def _refused(*args: str, env: dict[str, str] | None = None) -> str:
    r = run_cli("process_apps:app", *SERVE_ARGS, *args, env=env, timeout=30)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "running on" not in out, out
    lines = [line for line in out.splitlines() if "virtualenv" in line]
    assert len(lines) == 1, out
    assert f"Python {platform.python_version()}" in lines[0], out
    return lines[0]


def test_venv_of_another_python_version_is_refused(tmp_path):
    venv = tmp_path / "old"
    (venv / "lib" / "python3.9" / "site-packages").mkdir(parents=True)
    (venv / "bin").mkdir()
    (venv / "pyvenv.cfg").write_text("home = /opt/python3.9/bin\ninclude-system-site-packages = "
                                     "false\nversion = 3.9.18\n")
    for env in (None, {"VIRTUAL_ENV": str(venv)}):
        line = _refused(*(() if env else ("--venv", str(venv))), env=env)
        assert "3.9.18" in line and str(venv) in line, line


@pytest.mark.parametrize("kind", ["missing", "not-a-venv"])
def test_venv_path_that_is_no_venv_is_refused(tmp_path, kind):
    venv = tmp_path / "nothing-here"
    if kind == "not-a-venv":
        (venv / "lib").mkdir(parents=True)
    line = _refused("--venv", str(venv))
    assert str(venv) in line and "pyvenv.cfg" in line, line
