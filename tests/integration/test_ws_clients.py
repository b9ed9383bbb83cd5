"""WebSocket with real, independent clients and frameworks against the narwhal binary.

* Django Channels 4.0 (Django 3.2): a sync `WebsocketConsumer` echo and an
  `AsyncJsonWebsocketConsumer` behind `ProtocolTypeRouter`/`URLRouter`
  (apps/channels_app), driven by the `websockets` client.
* Node.js with the `ws` package (tests/integration/node, installed from the committed
  package-lock.json with `npm ci` on first use): text, binary, close 1000.
* Headless Debian Chromium loads a page narwhal serves (apps/ws_page.py) whose script
  opens a WebSocket back to the server and, once it is closed, POSTs what it saw to
  the app, which writes it to a report file the test waits for.

Missing node/npm/chromium, or an `npm ci` that cannot reach the registry, skip the
affected tests LOUDLY (reason on stderr and in the skip), never silently.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import warnings
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from conftest import APPS_DIR, launch
from rawhttp import assert_alive, get, wait_for_file
import wsclient

GUARD = 20.0  # failure guard for every wait
CHANNELS_DIR = APPS_DIR / "channels_app"
NODE_DIR = Path(__file__).resolve().parent / "node"
NODE_CLIENT = NODE_DIR / "echo_client.js"
CHROMIUM = os.environ.get("NARWHAL_TEST_CHROMIUM", "/usr/bin/chromium")


# --- helpers -------------------------------------------------------------------

def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def uri(server, path: str, **params: str) -> str:
    q = ("?" + urllib.parse.urlencode(params)) if params else ""
    return f"ws://{server.host}:{server.port}{path}{q}"


def connect(url: str, **kw):
    kw.setdefault("ping_interval", None)
    kw.setdefault("open_timeout", GUARD)
    kw.setdefault("close_timeout", GUARD)
    return wsclient.connect(url, **kw)


def read_report(path) -> dict:
    return json.loads(wait_for_file(str(path), timeout=GUARD))


_capman = None  # pytest's capture manager, to print past output capturing


@pytest.fixture(autouse=True, scope="module")
def _remember_capture_manager(request):
    global _capman
    _capman = request.config.pluginmanager.getplugin("capturemanager")
    yield
    _capman = None


def loud_skip(reason: str) -> None:
    """Skip, and make sure a human sees why: a banner on the real stderr (past pytest's
    capturing), a warning in the warnings summary, and the skip reason itself."""
    banner = f"\n{'!' * 78}\n!!! SKIPPED (test_ws_clients): {reason}\n{'!' * 78}\n"
    if _capman is not None:
        with _capman.global_and_fixture_disabled():
            print(banner, file=sys.stderr, flush=True)
    else:
        print(banner, file=sys.stderr, flush=True)
    warnings.warn(pytest.PytestWarning(f"LOUD SKIP: {reason}"), stacklevel=2)
    pytest.skip(f"LOUD SKIP: {reason}")


# --- Django Channels -------------------------------------------------------------

@pytest.fixture(scope="module")
def channels_server():
    server = launch("asgi:application", app_dir=CHANNELS_DIR,
                    env={"DJANGO_SETTINGS_MODULE": "settings"})
    yield server
    server.stop(signal.SIGTERM, timeout=5)


def test_channels_http_route_still_served(channels_server):
    resp = get(channels_server.addr, "/hello")
    assert resp.status == 200, (resp.status, resp.body)
    assert resp.body == b"hello from channels http"


def test_channels_sync_consumer_echo_and_client_close(channels_server, tmp_path):
    rep = tmp_path / "r.json"
    sent = ["hello channels", "ünïcødé ✓", "", b"\x00\x01\xff", "x" * 70000, os.urandom(100000)]

    async def main():
        async with connect(uri(channels_server, "/ws/echo/", report=str(rep))) as ws:
            got = []
            for msg in sent:
                await ws.send(msg)
                got.append(await ws.recv())
            await ws.close(1000, "bye")
            return got, ws.close_code
    got, code = run(main())
    for s, g in zip(sent, got):
        assert type(g) is type(s) and g == s, (s[:20], g[:20])
    assert len(got) == len(sent)
    assert code == 1000
    r = read_report(rep)
    assert r["consumer"] == "sync-echo"
    assert r["code"] == 1000, r
    assert r["received"] == len(sent), r


def test_channels_async_json_consumer(channels_server, tmp_path):
    rep = tmp_path / "r.json"

    async def main():
        async with connect(uri(channels_server, "/ws/json/", report=str(rep))) as ws:
            await ws.send(json.dumps({"numbers": [1, 2, 39], "name": "narwhäl"}))
            first = json.loads(await ws.recv())
            await ws.send(json.dumps([1, "two"]))
            second = json.loads(await ws.recv())
        return first, second
    first, second = run(main())
    assert first == {"consumer": "async-json", "path": "/ws/json/",
                     "echo": {"numbers": [1, 2, 39], "name": "narwhäl"}, "sum": 42}
    assert second == {"consumer": "async-json", "path": "/ws/json/", "echo": [1, "two"], "sum": 0}
    r = read_report(rep)
    assert r == {"consumer": "async-json", "code": 1000, "received": 2}


def test_channels_consumer_closes_with_code(channels_server, tmp_path):
    rep = tmp_path / "r.json"

    async def main():
        async with connect(uri(channels_server, "/ws/echo/", report=str(rep))) as ws:
            await ws.send("ping")
            assert await ws.recv() == "ping"
            await ws.send("close-4001")
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            return info.value.rcvd.code if info.value.rcvd else None
    assert run(main()) == 4001
    r = read_report(rep)
    assert r["consumer"] == "sync-echo" and r["received"] == 2, r


def test_channels_unknown_route_fails_handshake(channels_server):
    """URLRouter raises for an unrouted path before accepting: the handshake gets a 500
    (as under uvicorn/daphne) and the server keeps serving."""
    async def main():
        with pytest.raises(wsclient.HandshakeRejected) as info:
            async with connect(uri(channels_server, "/ws/nowhere/")):
                pass
        return wsclient.rejected_status(info.value)
    assert run(main()) == 500
    assert_alive(channels_server.addr, "/hello")


def test_channels_sync_consumer_logs_no_asgiref_warning(narwhal):
    """narwhal's native receive/send pass asyncio.iscoroutinefunction, so asgiref's
    async_to_sync (Channels' sync consumers) does not warn, as with uvicorn."""
    server = narwhal("asgi:application", app_dir=CHANNELS_DIR, env={"DJANGO_SETTINGS_MODULE": "settings"})

    async def main():
        async with connect(uri(server, "/ws/echo/")) as ws:
            await ws.send("x")
            return await ws.recv()
    assert run(main()) == "x"
    server.stop(signal.SIGTERM, timeout=5)
    assert "non-async-marked" not in server.log(), server.log()[-1500:]


# --- Node.js `ws` client -------------------------------------------------------------

_node_ready: dict[str, str | None] = {}


def _npm_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"npm_config_audit": "false", "npm_config_fund": "false",
                "npm_config_update_notifier": "false", "npm_config_loglevel": "error"})
    return env


def node_client() -> str:
    """Path of `node` with the `ws` package installed in NODE_DIR; skips loudly if impossible."""
    if "node" in _node_ready:
        if _node_ready["node"] is None:
            loud_skip(_node_ready["why"])
        return _node_ready["node"]
    node, npm = shutil.which("node"), shutil.which("npm")
    why = None
    if node is None or npm is None:
        why = (f"node ({node or 'MISSING'}) / npm ({npm or 'MISSING'}) not installed: "
               "run deploy/install-deps.sh; the Node.js `ws` client tests did NOT run")
    elif not (NODE_DIR / "node_modules" / "ws" / "package.json").exists():
        errors = []
        for cmd in (["npm", "ci", "--prefix", str(NODE_DIR)],
                    ["npm", "install", "--prefix", str(NODE_DIR)]):
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                                   env=_npm_env(), stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                errors.append(f"`{' '.join(cmd[:2])}` timed out after 300 s")
                continue
            if p.returncode == 0 and (NODE_DIR / "node_modules" / "ws" / "package.json").exists():
                break
            errors.append(f"`{' '.join(cmd[:2])}` exit {p.returncode}: {(p.stderr or p.stdout).strip()[-600:]}")
        else:
            why = ("npm could not install the `ws` package into tests/integration/node "
                   "(registry unreachable?); the Node.js `ws` client tests did NOT run:\n  "
                   + "\n  ".join(errors))
    _node_ready.update(node=None if why else node, why=why)
    if why:
        loud_skip(why)
    return node


def run_node(url: str) -> tuple[dict, subprocess.CompletedProcess]:
    node = node_client()
    p = subprocess.run([node, str(NODE_CLIENT), url], capture_output=True, text=True,
                       timeout=30, cwd=str(NODE_DIR.parents[2]), stdin=subprocess.DEVNULL)
    lines = p.stdout.strip().splitlines()
    assert lines, f"node client printed nothing (exit {p.returncode}); stderr:\n{p.stderr}"
    return json.loads(lines[-1]), p


def _assert_node_echoes(result: dict, p: subprocess.CompletedProcess) -> None:
    assert result["error"] is None, (result, p.stderr)
    assert result["opened"] is True, result
    kinds = [(e["kind"], e["got_kind"], e["length"], e["got_length"], e["equal"]) for e in result["echoes"]]
    assert kinds == [("text", "text", 15, 15, True), ("text", "text", 20, 20, True),
                     ("binary", "binary", 5, 5, True), ("binary", "binary", 100000, 100000, True),
                     ("text", "text", 70000, 70000, True)], kinds
    assert result["all_echoes_ok"] is True
    assert result["close_code"] == 1000, result
    assert p.returncode == 0, (p.returncode, result, p.stderr)


@pytest.mark.parametrize("flags,extensions", [((), "permessage-deflate"),
                                              (("--no-ws-per-message-deflate",), "")])
def test_node_ws_client_echo_and_close(narwhal, tmp_path, flags, extensions):
    node_client()  # skip before starting a server when node is unusable
    server = narwhal("ws_apps:app", *flags)
    rep = tmp_path / "r.json"
    result, p = run_node(uri(server, "/echo", report=str(rep)))
    _assert_node_echoes(result, p)
    assert result["extensions"] == extensions, result
    r = read_report(rep)
    assert r["disconnect"]["type"] == "websocket.disconnect"
    assert r["disconnect"]["code"] == 1000, r
    assert r["received"] == 5, r


def test_node_ws_client_against_channels(channels_server):
    result, p = run_node(uri(channels_server, "/ws/echo/"))
    _assert_node_echoes(result, p)


def test_node_ws_client_rejected_handshake(narwhal):
    """A real client sees the 403 of a close-before-accept as a failed handshake."""
    node_client()
    server = narwhal("ws_apps:app")
    result, p = run_node(uri(server, "/reject"))
    assert result["opened"] is False, result
    assert result["error"] == "unexpected HTTP response 403", result
    assert p.returncode == 1


# --- headless Chromium ---------------------------------------------------------------

CHROMIUM_GUARD = 180.0  # start-up of a real browser on a loaded machine against a sanitizer build


def _stop_process_group(proc: subprocess.Popen) -> None:
    """Chromium runs in its own session (start_new_session): stop it and its helper
    processes through its process group, by the PID we started."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        except ProcessLookupError:
            pass
    try:  # helpers that outlived the browser process itself
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def test_chromium_page_websocket_echo(narwhal, tmp_path):
    """The page reports what it saw (POST /result, written by the app to a file) once its
    WebSocket closed; the test waits for that report, so no browser timer decides."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        loud_skip(f"{CHROMIUM} not installed (Debian package `chromium`: run deploy/install-deps.sh); "
                  "the real-browser WebSocket test did NOT run")
    rep, result = tmp_path / "browser.json", tmp_path / "result.json"
    server = narwhal("ws_page:app", env={"WS_PAGE_REPORT": str(rep), "WS_PAGE_RESULT": str(result)})
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    env = dict(os.environ, HOME=str(tmp_path))  # nothing lands in the real home
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", f"{server.url}/"]
    log_path = tmp_path / "chromium.log"
    with open(log_path, "wb") as log:  # a file, not a pipe: a full pipe would stall the browser
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + CHROMIUM_GUARD
        while not result.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                how = (f"exited with {proc.returncode}" if proc.poll() is not None
                       else f"still running after {CHROMIUM_GUARD:.0f}s")
                pytest.fail(f"chromium (pid {proc.pid}) {how} before the page reported; chromium log tail:\n"
                            f"{log_path.read_text(errors='replace')[-2000:]}\nserver log:\n{server.log()}")
            time.sleep(0.05)  # poll interval for the report file
    finally:
        _stop_process_group(proc)
    seen = read_report(result)
    assert seen == {"echo": "hello from the browser", "close_code": 1000, "was_clean": True, "errors": 0}, (
        f"{seen}\nserver log:\n{server.log()}")
    r = read_report(rep)
    assert r["text"] == "hello from the browser" and r["path"] == "/ws", r
    assert r["origin"] == server.url, r
    assert r["host"] == f"{server.host}:{server.port}", r
    assert "HeadlessChrome" in (r["user_agent"] or ""), r
