"""Request ids (--request-id-header, default X-Request-ID) and the JSON access line.

* A sane id from the client is kept; none, or an insane one (spaces, too long), is
  replaced by a new 32-hex-digit id. The app finds exactly one such header in its scope,
  the response carries the same id back (unless the app sent its own), and the access
  line names it; a WebSocket's handshake response and its access line too.
* --request-id-header NAME renames it; '' turns request ids off.
* --log-format json access lines carry time, client, method, path, query, status,
  response bytes, duration split into queue wait and app time, request id, user agent,
  worker and interpreter.
"""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest

from conftest import APPS_DIR, run_cli, serving
from rawhttp import RawConnection, request, server_stats
import wsclient

APP = "request_id_app:app"
HEX32 = re.compile(r"[0-9a-f]{32}")
GUARD = 20.0


@pytest.fixture(scope="module")
def server():
    yield from serving(APP, "--log-format", "json")


def access_records(server) -> list[dict]:
    out = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            if rec.get("event") == "http":
                out.append(rec)
    return out


def access_record(server, request_id: str) -> dict:
    """The access record of the request with this id (waits for it: lines follow the response)."""
    server.wait_for_log(rf'"event": "http".*"request_id": "{re.escape(request_id)}"', timeout=GUARD)
    return next(r for r in access_records(server) if r["request_id"] == request_id)


def get(server, target: str, **kw) -> httpx.Response:
    with httpx.Client(base_url=f"http://{server.host}:{server.port}", timeout=GUARD) as c:
        return c.get(target, **kw)


def test_generated_when_absent(server):
    first, second = get(server, "/a"), get(server, "/b")
    for r in (first, second):
        rid = r.headers["x-request-id"]
        assert HEX32.fullmatch(rid), rid
        assert r.json()["ids"]["x-request-id"] == [rid]  # the app saw the same, once
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    rec = access_record(server, first.headers["x-request-id"])
    assert rec["path"] == "/a"


def test_sane_id_from_the_client_is_kept(server):
    rid = "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331:01"
    r = get(server, "/kept", headers={"X-Request-ID": rid})
    assert r.headers.get_list("x-request-id") == [rid]
    assert r.json()["ids"]["x-request-id"] == [rid]
    assert access_record(server, rid)["path"] == "/kept"


@pytest.mark.parametrize("bad", ["has spaces", "x" * 129, 'quote"d', "caf\xe9"])
def test_insane_id_is_replaced_not_duplicated(server, bad):
    conn = RawConnection(server.addr, GUARD)
    conn.send(b"GET /bad HTTP/1.1\r\nHost: x\r\nX-Request-ID: " + bad.encode("latin-1") + b"\r\n\r\n")
    resp = conn.read_response()
    conn.close()
    rid = resp.header("x-request-id")
    assert HEX32.fullmatch(rid), rid
    seen = json.loads(resp.body)["ids"]["x-request-id"]
    assert seen == [rid], seen


def test_the_apps_own_id_stands(server):
    r = get(server, "/own?own=app-chosen")
    assert r.headers.get_list("x-request-id") == ["app-chosen"]
    generated = r.json()["ids"]["x-request-id"][0]
    assert HEX32.fullmatch(generated)
    assert access_record(server, generated)["path"] == "/own"  # the log keeps the request's id


def test_websocket_handshake_and_access_line(server):
    async def go():
        async with wsclient.connect(f"ws://{server.host}:{server.port}/ws", [("X-Request-ID", "ws-1")],
                                    open_timeout=GUARD, close_timeout=GUARD) as ws:
            return json.loads(await ws.recv()), wsclient.response_header(ws, "x-request-id")
    seen, echoed = asyncio.run(asyncio.wait_for(go(), 30))
    assert seen["ids"]["x-request-id"] == ["ws-1"]
    assert echoed == "ws-1"
    server.wait_for_log(r'"event": "websocket".*"request_id": "ws-1"', timeout=GUARD)


def test_json_access_line_members(server):
    r = get(server, "/members?q=1&r=two", headers={"User-Agent": "probe/1.0 (\"x\")"})
    rec = access_record(server, r.headers["x-request-id"])
    assert rec["logger"] == "uvicorn.access" and rec["level"] == "info"
    assert isinstance(rec["ts"], float) and rec["timestamp"]
    assert re.fullmatch(r"127\.0\.0\.1:\d+", rec["client"]), rec
    assert (rec["method"], rec["path"], rec["query_string"]) == ("GET", "/members", "q=1&r=two")
    assert rec["http_version"] == "1.1" and rec["status"] == 200
    assert rec["bytes_out"] == len(r.content)
    assert rec["user_agent"] == 'probe/1.0 ("x")'
    assert rec["worker"] == server.pid and rec["interpreter"] == 0
    assert 0 <= rec["queue_s"] <= rec["duration_s"] and 0 <= rec["app_s"] <= rec["duration_s"]
    # uvicorn's text survives as the message
    assert rec["message"].endswith('"GET /members?q=1&r=two HTTP/1.1" 200'), rec["message"]


def test_queue_wait_and_app_time_are_split(narwhal, tmp_path):
    """B waits for A's slot: B's access line puts that wait in queue_s, A's is near zero
    (A is admitted at once), and each line's parts add up to its duration."""
    server = narwhal("overload_apps:router", "--limit-concurrency", "1", "--timeout-queue", "30",
                     "--log-format", "json")
    gate_a, gate_b = tmp_path / "gate-a", tmp_path / "gate-b"
    a = RawConnection(server.addr, GUARD)
    a.send(request("GET", "/hold?tag=a", headers=[("x-gate", str(gate_a)), ("x-request-id", "req-a")]))
    server.wait_for_log(r"holding tag=a\b")
    b = RawConnection(server.addr, GUARD)
    b.send(request("GET", "/hold?tag=b", headers=[("x-gate", str(gate_b)), ("x-request-id", "req-b")]))
    stats = server_stats(server)
    for _ in range(200):  # B is queued once the stats say so (a condition, not a sleep)
        if stats["queued"] >= 1:
            break
        stats = server_stats(server)
    assert stats["queued"] >= 1, stats
    gate_a.touch()
    assert a.read_response().status == 200
    gate_b.touch()
    assert b.read_response().status == 200
    ra, rb = access_record(server, "req-a"), access_record(server, "req-b")
    assert rb["queue_s"] > ra["queue_s"], (ra, rb)
    for rec in (ra, rb):
        assert rec["queue_s"] + rec["app_s"] == pytest.approx(rec["duration_s"], abs=0.002), rec
    a.close()
    b.close()


def test_shed_503_carries_the_id(narwhal, tmp_path):
    server = narwhal("overload_apps:router", "--limit-concurrency", "1", "--limit-queue", "0",
                     "--log-format", "json")
    gate = tmp_path / "gate"
    a = RawConnection(server.addr, GUARD)
    a.send(request("GET", "/hold?tag=a", headers=[("x-gate", str(gate))]))
    server.wait_for_log(r"holding tag=a\b")
    b = RawConnection(server.addr, GUARD)
    b.send(request("GET", "/hold?tag=b", headers=[("x-request-id", "shed-me")]))
    rb = b.read_response()
    assert rb.status == 503 and rb.header("x-request-id") == "shed-me"
    rec = access_record(server, "shed-me")
    assert rec["status"] == 503 and rec["app_s"] == 0
    gate.touch()
    assert a.read_response().status == 200
    a.close()
    b.close()


def test_renamed_header(narwhal):
    server = narwhal(APP, "--request-id-header", "X-Trace-Id")
    r = get(server, "/", headers={"X-Request-ID": "not-the-one"})
    seen = r.json()["ids"]
    assert HEX32.fullmatch(r.headers["x-trace-id"])
    assert seen["x-trace-id"] == [r.headers["x-trace-id"]]
    assert seen["x-request-id"] == ["not-the-one"]  # an ordinary header now
    assert r.headers.get_list("x-request-id") == []


def test_off(narwhal):
    server = narwhal(APP, "--request-id-header", "", "--log-format", "json")
    r = get(server, "/off")
    assert "x-request-id" not in r.headers
    assert r.json()["ids"]["x-request-id"] == []
    server.wait_for_log(r'"event": "http".*"path": "/off"', timeout=GUARD)
    rec = next(x for x in access_records(server) if x["path"] == "/off")
    assert rec["request_id"] is None


def test_bad_header_name_stops_startup():
    r = run_cli(APP, "--app-dir", str(APPS_DIR), "--port", "0", "--request-id-header", "bad name")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--request-id-header" in r.stderr and "'bad name'" in r.stderr, r.stderr
