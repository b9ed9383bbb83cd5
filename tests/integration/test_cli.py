"""The command line: uvicorn-compatible flags, config sources, start-up failures and
the ways of binding and loading an application."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import sys
import tomllib
from pathlib import Path

import httpx
import pytest

from conftest import APPS_DIR, READY, run_cli

TIMEOUT = httpx.Timeout(15.0)
# Flags that make a start-up failure exit on its own, or keep a mistaken success off
# port 8000.
SERVE_ARGS = ("--app-dir", str(APPS_DIR), "--host", "127.0.0.1", "--port", "0")
PY = f"python{sys.version_info.major}.{sys.version_info.minor}"

UVICORN_FLAGS = [
    "--host", "--port", "--uds", "--fd", "--app-dir", "--factory", "--root-path",
    "--lifespan", "--loop", "--interface", "--log-level", "--access-log", "--no-access-log",
    "--header", "--server-header", "--no-server-header", "--date-header", "--no-date-header",
    "--env-file", "--timeout-keep-alive", "--timeout-graceful-shutdown", "--backlog",
    "--http", "--ws",
]


def _get(server, path: str, **kw) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        return c.get(path, **kw)


def _output(result) -> str:
    return result.stdout + result.stderr


def _assert_cli_error(result, *names: str) -> None:
    assert result.returncode == 2, f"exit {result.returncode}\n{_output(result)}"
    assert "narwhal: error:" in result.stderr, result.stderr
    for name in names:
        assert name in result.stderr, f"{name!r} not named in:\n{result.stderr}"


def _assert_failed_before_serving(result) -> str:
    out = _output(result)
    assert result.returncode != 0, out
    assert "running on" not in out, out
    return out


@pytest.fixture
def bound_socket():
    """A listening TCP socket on 127.0.0.1 owned by the test (for --fd / port in use)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    yield sock
    sock.close()


# --------------------------------------------------------------------- meta options

def test_version():
    r = run_cli("--version")
    assert r.returncode == 0, _output(r)
    assert "narwhal" in r.stdout.lower()
    assert re.search(r"\d+\.\d+", r.stdout), r.stdout


def test_help_lists_uvicorn_flags():
    r = run_cli("--help")
    assert r.returncode == 0, _output(r)
    missing = [f for f in UVICORN_FLAGS if not re.search(re.escape(f) + r"(?![\w-])", r.stdout)]
    assert not missing, f"--help does not list {missing}:\n{r.stdout}"


@pytest.mark.parametrize("flag", ["--no-such-flag", "--reload-everything"])
def test_unknown_flag(flag):
    r = run_cli("env_app:app", *SERVE_ARGS, flag)
    _assert_cli_error(r, flag)


@pytest.mark.parametrize("flag,value", [
    ("--port", "abc"),
    ("--port", "70000"),
    ("--lifespan", "maybe"),
    ("--loop", "nope"),
    ("--log-level", "loud"),
    ("--interface", "asgi9"),
    ("--timeout-keep-alive", "-1"),
    ("--http", "h3"),
    ("--ws", "nope"),
])
def test_bad_flag_value(flag, value):
    r = run_cli("env_app:app", *SERVE_ARGS, flag, value, timeout=15)
    _assert_cli_error(r, flag)


def test_missing_app():
    r = run_cli()
    assert r.returncode == 2, _output(r)
    r = run_cli("--host", "127.0.0.1", "--port", "0")
    assert r.returncode == 2, _output(r)
    assert "narwhal: error:" in r.stderr


# ------------------------------------------------------------- start-up failures

def test_module_not_found():
    r = run_cli("no_such_module_xyz:app", *SERVE_ARGS)
    out = _assert_failed_before_serving(r)
    assert "no_such_module_xyz" in out


def test_attribute_not_found():
    r = run_cli("env_app:no_such_attribute", *SERVE_ARGS)
    out = _assert_failed_before_serving(r)
    assert "no_such_attribute" in out


def test_import_string_without_attribute():
    r = run_cli("env_app", *SERVE_ARGS)
    out = _assert_failed_before_serving(r)
    assert "env_app" in out


def test_import_error_prints_traceback():
    r = run_cli("broken_import:app", *SERVE_ARGS)
    out = _assert_failed_before_serving(r)
    assert "Traceback (most recent call last)" in out
    assert "broken_import exploded on purpose" in out
    assert "broken_import.py" in out


def test_port_in_use(bound_socket):
    port = bound_socket.getsockname()[1]
    r = run_cli("env_app:app", "--app-dir", str(APPS_DIR), "--host", "127.0.0.1", "--port", str(port),
                timeout=20)
    out = _assert_failed_before_serving(r)
    assert r.returncode == 1, out
    assert "ERROR" in out or "error" in out, out


# ------------------------------------------------------------------ listening

def test_uds(narwhal, tmp_path_factory):
    # A short path: sun_path holds 108 bytes.
    path = str(Path(tmp_path_factory.mktemp("uds")) / "nw.sock")
    server = narwhal("env_app:app", "--uds", path)
    assert f"narwhal running on unix socket {path}" in server.log()
    with httpx.Client(transport=httpx.HTTPTransport(uds=path), base_url="http://narwhal",
                      timeout=TIMEOUT) as c:
        r = c.get("/scope")
    assert r.status_code == 200
    assert r.json()["path"] == "/scope"
    assert server.stop() == 0


def test_fd(narwhal, bound_socket):
    fd = bound_socket.fileno()
    host, port = bound_socket.getsockname()
    server = narwhal("env_app:app", "--fd", str(fd))
    assert re.search(rf"narwhal running on socket {fd}\b", server.log()), server.log()
    r = httpx.get(f"http://{host}:{port}/scope", timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.json()["server"] == [host, port]
    assert server.stop() == 0


# -------------------------------------------------------------- app loading

def test_factory(narwhal):
    server = narwhal("factory_app:create_app", "--factory")
    r = _get(server, "/")
    assert r.status_code == 200
    assert r.json() == {"made_by": "create_app", "factory_calls": 1, "instance": 1}


@pytest.mark.parametrize("app,flags,expected", [
    ("asgi2_app:App", (), "asgi2 class GET /two"),
    ("asgi2_app:App", ("--interface", "asgi2"), "asgi2 class GET /two"),
    ("asgi2_app:app_function", (), "asgi2 function /two"),
    ("asgi2_app:app_function", ("--interface", "asgi2"), "asgi2 function /two"),
])
def test_asgi2(narwhal, app, flags, expected):
    server = narwhal(app, *flags)
    r = _get(server, "/two")
    assert r.status_code == 200, server.log()
    assert r.text == expected


@pytest.mark.parametrize("flags", [(), ("--interface", "asgi3")], ids=["auto", "asgi3"])
def test_asgi3_callable_returning_awaitable(narwhal, flags):
    # An instance whose __call__ takes (scope, receive, send) is ASGI 3 even though
    # __call__ is not `async def` (auto-detection must not take it for ASGI 2).
    server = narwhal("returns_awaitable:app", *flags)
    r = _get(server, "/three")
    assert r.status_code == 200, server.log()
    assert r.text == "asgi3 awaitable /three"


def test_env_file(narwhal, tmp_path):
    env_file = tmp_path / "test.env"
    env_file.write_text(
        "# a comment line\n"
        "\n"
        "NARWHAL_TEST_PLAIN=plain-value\n"
        "NARWHAL_TEST_URL=http://example.test/a?b=c\n"
    )
    server = narwhal("env_app:app", "--env-file", str(env_file))
    r = _get(server, "/env", params=[("name", "NARWHAL_TEST_PLAIN"), ("name", "NARWHAL_TEST_URL"),
                                     ("name", "NARWHAL_TEST_MISSING")])
    assert r.json() == {"NARWHAL_TEST_PLAIN": "plain-value", "NARWHAL_TEST_URL": "http://example.test/a?b=c",
                        "NARWHAL_TEST_MISSING": None}


def test_env_file_dotenv_syntax(narwhal, tmp_path):
    """Quoting and `export` as python-dotenv (uvicorn's loader) reads them."""
    env_file = tmp_path / "syntax.env"
    env_file.write_text(
        'NARWHAL_TEST_DQ="two words # not a comment"\n'
        "NARWHAL_TEST_SQ='single quoted'\n"
        "export NARWHAL_TEST_EXPORTED=exported\n"
    )
    server = narwhal("env_app:app", "--env-file", str(env_file))
    names = ["NARWHAL_TEST_DQ", "NARWHAL_TEST_SQ", "NARWHAL_TEST_EXPORTED"]
    r = _get(server, "/env", params=[("name", n) for n in names])
    assert r.json() == {"NARWHAL_TEST_DQ": "two words # not a comment",
                        "NARWHAL_TEST_SQ": "single quoted", "NARWHAL_TEST_EXPORTED": "exported"}


def test_env_file_missing_is_an_error(tmp_path):
    r = run_cli("env_app:app", *SERVE_ARGS, "--env-file", str(tmp_path / "absent.env"))
    out = _assert_failed_before_serving(r)
    assert "absent.env" in out


_PROBE = '''
import json
{imports}

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({{"type": "lifespan.startup.complete"}})
            elif message["type"] == "lifespan.shutdown":
                await send({{"type": "lifespan.shutdown.complete"}})
                return
    body = json.dumps({payload}).encode()
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]}})
    await send({{"type": "http.response.body", "body": body}})
'''


def _fake_venv(root: Path) -> tuple[Path, Path]:
    """A virtual environment as `python -m venv` lays it out, holding `venvmod`."""
    venv = root / "venv"
    site = venv / "lib" / PY / "site-packages"
    site.mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(
        f"home = /usr/bin\ninclude-system-site-packages = false\n"
        f"version = {sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}\n"
    )
    (site / "venvmod.py").write_text('VALUE = "imported from the fake venv"\n')
    app_dir = root / "app"
    app_dir.mkdir()
    (app_dir / "venv_probe.py").write_text(_PROBE.format(
        imports="import venvmod",
        payload='{"value": venvmod.VALUE, "file": venvmod.__file__}'))
    return venv, app_dir


def _assert_from_venv(server, venv: Path) -> None:
    r = _get(server, "/")
    assert r.status_code == 200
    body = r.json()
    assert body["value"] == "imported from the fake venv"
    assert os.path.realpath(body["file"]).startswith(os.path.realpath(venv) + os.sep)


def test_virtual_env_variable(narwhal, tmp_path):
    venv, app_dir = _fake_venv(tmp_path)
    server = narwhal("venv_probe:app", app_dir=app_dir, env={"VIRTUAL_ENV": str(venv)})
    _assert_from_venv(server, venv)


def test_venv_flag(narwhal, tmp_path):
    venv, app_dir = _fake_venv(tmp_path)
    server = narwhal("venv_probe:app", "--venv", str(venv), app_dir=app_dir)
    _assert_from_venv(server, venv)


def test_venv_pth_files_are_processed(narwhal, tmp_path):
    """Editable installs put a .pth file in site-packages: it must be honoured."""
    venv, app_dir = _fake_venv(tmp_path)
    extra = tmp_path / "editable_src"
    extra.mkdir()
    (extra / "pthmod.py").write_text('VALUE = "found through a .pth file"\n')
    (venv / "lib" / PY / "site-packages" / "_editable.pth").write_text(f"{extra}\n")
    (app_dir / "pth_probe.py").write_text(_PROBE.format(imports="import pthmod",
                                                        payload='{"value": pthmod.VALUE}'))
    server = narwhal("pth_probe:app", app_dir=app_dir, env={"VIRTUAL_ENV": str(venv)})
    assert _get(server, "/").json() == {"value": "found through a .pth file"}


def test_app_dir_goes_on_sys_path(narwhal, tmp_path):
    app_dir = tmp_path / "somewhere"
    app_dir.mkdir()
    (app_dir / "appdir_probe.py").write_text(_PROBE.format(
        imports="import sys", payload='{"sys_path": sys.path}'))
    server = narwhal("appdir_probe:app", app_dir=app_dir)
    sys_path = _get(server, "/").json()["sys_path"]
    assert os.path.realpath(app_dir) in [os.path.realpath(p) for p in sys_path if p], sys_path


def test_default_app_dir_is_cwd(narwhal):
    server = narwhal("env_app:app", app_dir=None, cwd=APPS_DIR)
    assert _get(server, "/anything").text == "env_app /anything"


# ------------------------------------------------------------------------ logging

def test_log_level_warning_hides_info(narwhal, bound_socket):
    # Without INFO there is no "running on" line to wait for: serve a socket we bound,
    # so the request just queues in the backlog until the server accepts it.
    host, port = bound_socket.getsockname()
    server = narwhal("env_app:app", "--fd", str(bound_socket.fileno()), "--log-level", "warning",
                     wait=False)
    r = httpx.get(f"http://{host}:{port}/quiet", timeout=TIMEOUT)
    assert r.status_code == 200
    assert server.stop() == 0
    log = server.log()
    assert "INFO" not in log, log
    assert "/quiet" not in log, log


def test_access_log_on_by_default(narwhal):
    server = narwhal("env_app:app")
    assert _get(server, "/access-probe", params={"x": "1"}).status_code == 200
    server.wait_for_log(r'INFO: +127\.0\.0\.1:\d+ - "GET /access-probe\?x=1 HTTP/1\.1" 200')


def test_no_access_log(narwhal):
    server = narwhal("env_app:app", "--no-access-log")
    assert _get(server, "/access-probe").status_code == 200
    assert server.stop() == 0
    log = server.log()
    assert "/access-probe" not in log, log
    assert "Application startup complete." in log  # other INFO lines stay


@pytest.mark.parametrize("loop,expected", [("asyncio", "asyncio"), ("uvloop", "uvloop"), ("auto", "uvloop")])
def test_loop(narwhal, loop, expected):
    server = narwhal("env_app:app", "--loop", loop)
    module = _get(server, "/loop").json()["module"]
    assert module.split(".")[0] == expected, module


# ----------------------------------------------------------------- response flags

def test_header_flags(narwhal):
    server = narwhal("env_app:app", "--header", "x-custom:hello", "--header", "X-Other: world")
    r = _get(server, "/")
    assert r.headers["x-custom"] == "hello"
    assert r.headers["x-other"] == "world"
    assert r.headers["server"] == "narwhal"
    assert "date" in r.headers


def test_no_server_and_date_headers(narwhal):
    server = narwhal("env_app:app", "--no-server-header", "--no-date-header")
    r = _get(server, "/")
    assert r.status_code == 200
    assert "server" not in r.headers
    assert "date" not in r.headers


def test_root_path(narwhal):
    server = narwhal("env_app:app", "--root-path", "/api/v1")
    scope = _get(server, "/scope").json()
    assert (scope["root_path"], scope["path"], scope["raw_path"]) == ("/api/v1", "/api/v1/scope", "/api/v1/scope")


def test_timeout_keep_alive_closes_idle_connection(narwhal):
    # 2 s: the second request must come within it, which a busy machine still manages.
    # That the value itself is applied is tested (from below) in test_http_protocol.py.
    server = narwhal("env_app:app", "--timeout-keep-alive", "2")
    conn = http.client.HTTPConnection(server.host, server.port, timeout=15)
    try:
        for i in range(2):  # the connection is kept alive between requests...
            conn.request("GET", f"/env?name=R{i}")
            resp = conn.getresponse()
            assert resp.status == 200
            resp.read()
        # ...and closed by the server once idle: recv() returns EOF within the guard.
        conn.sock.settimeout(30)
        assert conn.sock.recv(1) == b""
    finally:
        conn.close()


# ------------------------------------------------------------- config sources

def _print_config(*args: str, env: dict | None = None, cwd=None) -> dict:
    r = run_cli("env_app:app", *args, "--print-config", env=env, cwd=cwd)
    assert r.returncode == 0, _output(r)
    return tomllib.loads(r.stdout)


def test_print_config_shows_defaults_and_flags():
    cfg = _print_config("--port", "9123", "--lifespan", "off", "--header", "x-a:b")
    assert cfg["app"] == "env_app:app"
    assert cfg["port"] == 9123
    assert cfg["lifespan"] == "off"
    assert cfg["host"] == "127.0.0.1"
    assert cfg["timeout_keep_alive"] == 5
    assert cfg["read_window"] == 1048576  # the measured default (docs/benchmarks.md)
    assert "x-a:b" in json.dumps(cfg["headers"])


def test_config_file_toml(narwhal, tmp_path):
    cfg_path = tmp_path / "narwhal.toml"
    cfg_path.write_text('port = 7001\nheaders = ["x-from-config:yes"]\nlifespan = "on"\n')
    cfg = _print_config("--config", str(cfg_path))
    assert cfg["port"] == 7001
    assert cfg["lifespan"] == "on"
    # The file is really used when serving (the harness's --port 0 wins over the file).
    server = narwhal("env_app:app", "--config", str(cfg_path))
    assert _get(server, "/").headers["x-from-config"] == "yes"


@pytest.mark.parametrize("name,text", [
    ("pyproject.toml", '[project]\nname = "x"\n\n[tool.narwhal]\nport = 7002\n'),
    ("narwhal.json", '{"port": 7002}'),
])
def test_config_file_other_formats(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    assert _print_config("--config", str(path))["port"] == 7002


def test_config_precedence_file_env_cli(tmp_path):
    cfg_path = tmp_path / "narwhal.toml"
    cfg_path.write_text("port = 7001\nbacklog = 100\n")
    cfg = _print_config("--config", str(cfg_path), env={"NARWHAL_PORT": "7002"})
    assert (cfg["port"], cfg["backlog"]) == (7002, 100)  # env beats file
    cfg = _print_config("--config", str(cfg_path), "--port", "7003", env={"NARWHAL_PORT": "7002"})
    assert cfg["port"] == 7003  # CLI beats env


def test_config_file_unknown_key(tmp_path):
    cfg_path = tmp_path / "narwhal.toml"
    cfg_path.write_text("port = 7001\nbogus_setting = 1\n")
    r = run_cli("env_app:app", *SERVE_ARGS, "--config", str(cfg_path))
    _assert_cli_error(r, "bogus_setting", cfg_path.name)


def test_config_file_bad_value(tmp_path):
    cfg_path = tmp_path / "narwhal.toml"
    cfg_path.write_text('port = "not a port"\n')
    r = run_cli("env_app:app", "--app-dir", str(APPS_DIR), "--config", str(cfg_path), timeout=15)
    _assert_cli_error(r, "port", cfg_path.name)


def test_env_var_bad_value():
    r = run_cli("env_app:app", "--app-dir", str(APPS_DIR), env={"NARWHAL_PORT": "abc"}, timeout=15)
    _assert_cli_error(r, "NARWHAL_PORT")
