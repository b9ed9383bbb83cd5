"""uvicorn command lines and deployments run unchanged: its --http/--ws choices, its
UVICORN_* environment variables and WEB_CONCURRENCY, app factories passed without
--factory, and the reason phrases of every registered status code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import tomllib

import httpx
import pytest

from conftest import APPS_DIR, NARWHAL_BIN, READY, Server, _pump, run_cli
import rawhttp
from venv_util import pinned, require_venv

TIMEOUT = httpx.Timeout(15.0)
FACTORY_WARNING = ("ASGI app factory detected. Using it, but please consider setting the "
                   "--factory flag explicitly.")


def _get(server, path: str = "/") -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        return c.get(path)


def _print_config(*args: str, env: dict[str, str]) -> dict:
    r = run_cli("env_app:app", *args, "--print-config", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return tomllib.loads(r.stdout)


def _lines(server, needle: str) -> list[str]:
    return [line for line in server.log().splitlines() if needle in line]


# ------------------------------------------------------------------- --http / --ws

@pytest.mark.parametrize("http,ws", [
    ("auto", "auto"),
    ("h11", "wsproto"),
    ("httptools", "websockets"),
    ("auto", "websockets-sansio"),
    ("zttp", "auto"),
])
def test_uvicorn_http_and_ws_choices_are_served_by_narwhal(narwhal, http, ws):
    server = narwhal("env_app:app", "--http", http, "--ws", ws)
    assert _get(server).status_code == 200
    http_note = f"--http {http}: served by narwhal's own HTTP/1.1 implementation"
    ws_note = f"--ws {ws}: served by narwhal's own WebSocket implementation"
    server.wait_for_log(ws_note)
    assert len(_lines(server, http_note)) == 1, server.log()
    assert len(_lines(server, ws_note)) == 1, server.log()


def test_http2_is_answered_with_http11_and_a_warning(narwhal):
    """uvicorn's --http2 (with --http zttp): narwhal has no HTTP/2. It starts, says so once
    as a warning, and serves HTTP/1.1, which every client that negotiates accepts."""
    server = narwhal("env_app:app", "--http", "zttp", "--http2")
    resp = _get(server)
    assert resp.status_code == 200 and resp.http_version == "HTTP/1.1"
    warning = "--http2: narwhal serves HTTP/1.1 only"
    server.wait_for_log(re.escape(warning))
    assert len(_lines(server, warning)) == 1, server.log()
    assert all("WARNING" in line for line in _lines(server, warning)), server.log()


def test_every_flag_of_the_pinned_uvicorn_is_accepted():
    """Each flag the pinned uvicorn's --help lists (tests/requirements/frameworks.txt) is
    one narwhal knows: a uvicorn command line never fails on "no such option"."""
    venv = require_venv()
    helptext = subprocess.run([str(venv / "bin" / "python"), "-m", "uvicorn", "--help"],
                              capture_output=True, text=True, timeout=60, check=True).stdout
    flags = sorted(set(re.findall(r"(?:^\s+|/ )(--[a-z0-9][a-z0-9-]*)", helptext, re.M)))
    assert len(flags) > 40 and "--reload" in flags, helptext
    unknown = []
    for flag in flags:
        # A flag that needs a value fails on the missing value; an unknown one on its name.
        r = run_cli("--print-config", flag, timeout=15)
        if "no such option" in r.stderr:
            unknown.append(flag)
    assert not unknown, f"uvicorn {pinned('uvicorn')} flags narwhal lacks: {unknown}"


UPGRADE = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
           ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]


def test_ws_none_serves_upgrade_requests_as_http(narwhal):
    # uvicorn --ws none hands an upgrade request to the app as an ordinary "http" scope.
    server = narwhal("env_app:app", "--ws", "none")
    resp = rawhttp.exchange(server.addr, rawhttp.request("GET", "/scope", headers=UPGRADE),
                            check_closed=False)
    assert resp.status == 200, resp
    assert json.loads(resp.body)["type"] == "http"
    assert len(_lines(server, "--ws none: WebSocket is off")) == 1, server.log()


@pytest.mark.parametrize("flags", [(), ("--ws", "wsproto")], ids=["default", "wsproto"])
def test_websocket_is_on_otherwise(narwhal, flags):
    server = narwhal("ws_apps:app", *flags)
    with rawhttp.RawConnection(server.addr, rawhttp.DEFAULT_TIMEOUT) as conn:
        conn.try_send(rawhttp.request("GET", "/echo", headers=UPGRADE))
        _, resp = conn.read_head()
    assert resp.status == 101, resp


@pytest.mark.parametrize("flag,value,choices", [
    ("--http", "h3", "auto, h11, httptools, zttp"),
    ("--http", "http2", "auto, h11, httptools, zttp"),
    ("--ws", "socketio", "auto, none, websockets, websockets-sansio, wsproto"),
])
def test_uvicorn_choices_in_the_error(flag, value, choices):
    r = run_cli("env_app:app", "--app-dir", str(APPS_DIR), flag, value, timeout=15)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"{flag}: invalid choice '{value}' (choose from {choices})" in r.stderr, r.stderr


# ------------------------------------------------------------ UVICORN_* variables

# One value per option narwhal shares with uvicorn, and what --print-config shows for it.
SHARED = {
    "UVICORN_APP": ("other:app", "app", "other:app"),
    "UVICORN_APP_DIR": ("/srv", "app_dir", "/srv"),
    "UVICORN_FACTORY": ("true", "factory", True),
    "UVICORN_INTERFACE": ("asgi2", "interface", "asgi2"),
    "UVICORN_LIFESPAN": ("off", "lifespan", "off"),
    "UVICORN_LOOP": ("asyncio", "loop", "asyncio"),
    "UVICORN_HTTP": ("h11", "http", "h11"),
    "UVICORN_WS": ("wsproto", "ws", "wsproto"),
    "UVICORN_ROOT_PATH": ("/api", "root_path", "/api"),
    "UVICORN_HOST": ("0.0.0.0", "host", "0.0.0.0"),
    "UVICORN_PORT": ("9123", "port", 9123),
    "UVICORN_UDS": ("/tmp/x.sock", "uds", "/tmp/x.sock"),
    "UVICORN_FD": ("7", "fd", 7),
    "UVICORN_BACKLOG": ("99", "backlog", 99),
    "UVICORN_LIMIT_CONCURRENCY": ("12", "limit_concurrency", 12),
    "UVICORN_TIMEOUT_KEEP_ALIVE": ("3", "timeout_keep_alive", 3),
    "UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN": ("4", "timeout_graceful_shutdown", 4),
    "UVICORN_WS_MAX_SIZE": ("1000", "ws_max_size", 1000),
    "UVICORN_WS_MAX_QUEUE": ("5", "ws_max_queue", 5),
    "UVICORN_WS_PING_INTERVAL": ("6", "ws_ping_interval", 6),
    "UVICORN_WS_PING_TIMEOUT": ("7", "ws_ping_timeout", 7),
    "UVICORN_WS_PER_MESSAGE_DEFLATE": ("false", "ws_per_message_deflate", False),
    "UVICORN_SERVER_HEADER": ("false", "server_header", False),
    "UVICORN_DATE_HEADER": ("false", "date_header", False),
    "UVICORN_HEADERS": ("x-a:1 x-b:2", "headers", ["x-a:1", "x-b:2"]),
    "UVICORN_LOG_LEVEL": ("debug", "log_level", "debug"),
    "UVICORN_ACCESS_LOG": ("false", "access_log", False),
    "UVICORN_RESET_CONTEXTVARS": ("true", "reset_contextvars", True),
    "UVICORN_HTTP2": ("true", "http2", True),
    # uvicorn's name for the same bound (see test_h11_max_incomplete_event_size_...).
    "UVICORN_H11_MAX_INCOMPLETE_EVENT_SIZE": ("20000", "limit_request_head", 20000),
}


@pytest.mark.parametrize("name", sorted(SHARED))
def test_uvicorn_variable_is_read(name):
    value, key, shown = SHARED[name]
    r = run_cli("--print-config", env={name: value})
    assert r.returncode == 0, r.stdout + r.stderr
    assert tomllib.loads(r.stdout)[key] == shown


def test_h11_max_incomplete_event_size_bounds_the_request_head(narwhal):
    """uvicorn's --h11-max-incomplete-event-size: the most h11 buffers of a request it has
    not completely received, its head. narwhal's --limit-request-head under uvicorn's
    name: a head just within it is served, one byte more is answered 431. As h11 has no
    bound per field, one field may fill it (narwhal's own 8190-byte field limit is lifted)."""
    limit = 20_000
    server = narwhal("env_app:app", "--h11-max-incomplete-event-size", str(limit))
    base = b"GET / HTTP/1.1\r\nhost: t\r\nx-pad: \r\n\r\n"

    def request(total: int) -> bytes:
        pad = b"v" * (total - len(base))
        return base.replace(b"x-pad: ", b"x-pad: " + pad)

    assert len(request(limit)) == limit
    ok = rawhttp.exchange(server.addr, request(limit), check_closed=False)
    assert ok.status == 200, server.log()
    assert rawhttp.exchange(server.addr, request(limit + 1)).status == 431


@pytest.mark.parametrize("app", ["contextvars_app:app", "contextvars_app:app_with_factory"])
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_reset_contextvars(narwhal, app, loop):
    """uvicorn's --reset-contextvars: each request's task runs in a new, empty context, so
    a variable set at import is not seen (both servers answer "import unset" without the
    flag, "unset unset" with it; the lifespan's own task never leaks into requests). Also
    through a task factory the app installed."""
    plain = narwhal(app, "--loop", loop)
    reset = narwhal(app, "--loop", loop, "--reset-contextvars")
    for _ in range(2):  # a request's own set() reaches no later request
        assert _get(plain).text == "import unset"
        assert _get(reset).text == "unset unset"


def test_uvicorn_variables_rank_below_narwhal_and_cli():
    env = {"UVICORN_PORT": "7001", "UVICORN_BACKLOG": "11", "UVICORN_ROOT_PATH": "/u"}
    cfg = _print_config(env=env)
    assert (cfg["port"], cfg["backlog"], cfg["root_path"]) == (7001, 11, "/u")
    cfg = _print_config("--backlog", "33", env={**env, "NARWHAL_PORT": "7002"})
    assert (cfg["port"], cfg["backlog"], cfg["root_path"]) == (7002, 33, "/u")


def test_uvicorn_variable_errors_name_it():
    r = run_cli("env_app:app", "--app-dir", str(APPS_DIR), env={"UVICORN_PORT": "abc"}, timeout=15)
    assert r.returncode == 2
    assert "UVICORN_PORT: invalid value 'abc'" in r.stderr, r.stderr


def _clean_environment() -> dict[str, str]:
    """This process's environment (sanitizer options included) without server settings."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("NARWHAL_", "UVICORN_")) and k not in ("VIRTUAL_ENV", "WEB_CONCURRENCY")}


def _start_without_cli_address(env: dict[str, str]) -> Server:
    """Start narwhal with no --host/--port on the command line (conftest's launch always
    passes them), so that the environment decides where it listens."""
    proc = subprocess.Popen(
        [NARWHAL_BIN, "env_app:app", "--app-dir", str(APPS_DIR)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**_clean_environment(), "PYTHONDONTWRITEBYTECODE": "1", **env},
    )
    server = Server(proc, None, None)
    server._reader = threading.Thread(target=_pump, args=(server, proc.stdout), daemon=True)
    server._reader.start()
    return server


def test_uvicorn_host_and_port_are_served():
    # Port 0 instead of uvicorn's default 8000: serving on an ephemeral port at all
    # proves UVICORN_PORT was read.
    server = _start_without_cli_address({"UVICORN_HOST": "127.0.0.1", "UVICORN_PORT": "0",
                                         "UVICORN_HEADERS": "x-a:1 x-b:2"})
    try:
        m = server.wait_for_log(READY.pattern, timeout=60)
        server.host, server.port = m.group("host"), int(m.group("port"))
        assert server.host == "127.0.0.1" and server.port != 8000
        r = _get(server)
        assert r.status_code == 200
        assert (r.headers["x-a"], r.headers["x-b"]) == ("1", "2")
        log = server.log()
        for name in ("UVICORN_HOST", "UVICORN_PORT", "UVICORN_HEADERS"):
            assert log.count(f"{name}: honoured as") == 1, log
    finally:
        assert server.stop() == 0


# ------------------------------------------------------------------- app factories

def test_factory_without_flag_is_detected(narwhal):
    server = narwhal("factory_app:create_app")
    r = _get(server)
    assert r.status_code == 200, server.log()
    assert r.json() == {"made_by": "create_app", "factory_calls": 1, "instance": 1}
    assert server.log().count(FACTORY_WARNING) == 1, server.log()


@pytest.mark.parametrize("app", ["env_app:app", "asgi2_app:App", "asgi2_app:app_function",
                                 "returns_awaitable:app", "factory_shapes:wrapped_app",
                                 "factory_shapes:middleware_app"])
def test_apps_are_not_taken_for_factories(narwhal, app):
    server = narwhal(app)
    assert _get(server, "/two").status_code == 200, server.log()
    assert "factory" not in server.log(), server.log()


def test_class_with_no_argument_constructor_is_a_factory(narwhal):
    # As in uvicorn: calling the class makes the app instance.
    server = narwhal("factory_shapes:App")
    assert _get(server).text == "hello"
    assert server.log().count(FACTORY_WARNING) == 1, server.log()


def test_factory_flag_says_nothing(narwhal):
    server = narwhal("factory_app:create_app", "--factory")
    assert _get(server).json()["factory_calls"] == 1
    assert FACTORY_WARNING not in server.log()


# ------------------------------------------------------------------- reason phrases

@pytest.fixture(scope="module")
def router():
    from conftest import serving
    yield from serving("raw_apps:router")


@pytest.mark.parametrize("status,reason", [
    (308, "Permanent Redirect"),
    (413, "Content Too Large"),
    (418, "I'm a teapot"),
    (421, "Misdirected Request"),
    (422, "Unprocessable Content"),
    (425, "Too Early"),
    (451, "Unavailable For Legal Reasons"),
    (511, "Network Authentication Required"),
])
def test_status_line_reason(router, status, reason):
    resp = rawhttp.get(router.addr, f"/status?status={status}")
    assert resp.status == status
    assert resp.reason == reason


def test_server_generated_413_reason(narwhal):
    server = narwhal("raw_apps:router", "--limit-request-body", "10")
    raw = rawhttp.request("POST", "/echo", body=b"x" * 100, headers=[("Content-Type", "text/plain")])
    resp = rawhttp.exchange(server.addr, raw)
    assert (resp.status, resp.reason) == (413, "Content Too Large")
