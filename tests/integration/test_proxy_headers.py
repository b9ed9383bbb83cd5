"""Proxy headers: X-Forwarded-For, X-Forwarded-Proto and RFC 7239 Forwarded.

Real binary on 127.0.0.1, raw sockets, httpx and the `websockets` client; the
proxy_app test app answers the scope's client, server and scheme.

* From a trusted peer (127.0.0.1 is trusted by default, and in lists and CIDRs that
  include it) the client is the rightmost X-Forwarded-For hop that is not a trusted
  proxy (all trusted: the leftmost), with the hop's port or 0; X-Forwarded-Proto sets
  the scheme (wss for a WebSocket); Forwarded does the same when X-Forwarded-* are
  absent; X-Forwarded-* win when both are present.
* Per request: one keep-alive connection carries requests of different clients, and a
  request without headers gets the socket's own client back.
* Malformed values change nothing and are never an error.
* From an untrusted peer (--forwarded-allow-ips 10.0.0.1), and with --no-proxy-headers,
  nothing changes.
* $FORWARDED_ALLOW_IPS is read (below the flag); a bad list stops start-up (exit 2).
* A peer on a Unix socket is trusted only under 'unix:' or '*'.
* The access line names the forwarded client.
* nginx in front of two narwhal instances, setting X-Forwarded-For
  ($proxy_add_x_forwarded_for) and X-Forwarded-Proto: the app sees the test client's
  own address (it connects from 127.0.0.2; only nginx's 127.0.0.1 is trusted), also
  when the client sends an X-Forwarded-For of its own (rightmost untrusted hop).
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from balancers import balancers, nginx_http_proxy  # noqa: F401 (balancers is a fixture)
from conftest import run_cli, serving
from rawhttp import RawConnection, request
import wsclient

APP = "proxy_app:app"
GUARD = 30.0  # failure guard for every wait


@pytest.fixture(scope="module")
def trusted():
    yield from serving(APP)


@pytest.fixture(scope="module")
def untrusted():
    yield from serving(APP, "--forwarded-allow-ips", "10.0.0.1")


def ask(server, headers: list[tuple[str, str]]) -> dict:
    with RawConnection(server.addr) as conn:
        conn.send(request("GET", "/", headers))
        resp = conn.read_response()
        assert resp.status == 200, resp
        return json.loads(resp.body)


def own_client(server) -> dict:
    return ask(server, [])


def test_x_forwarded_for_and_proto_from_trusted_peer(trusted):
    facts = ask(trusted, [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https")])
    assert facts["client"] == ["203.0.113.9", 0]
    assert facts["scheme"] == "https"
    assert facts["server"] == ["127.0.0.1", trusted.port]


def test_httpx_client(trusted):
    with httpx.Client(base_url=trusted.url, trust_env=False, timeout=GUARD) as client:
        r = client.get("/", headers={"X-Forwarded-For": "2001:db8::7, 127.0.0.1",
                                     "X-Forwarded-Proto": "https"})
    assert r.status_code == 200
    assert r.json()["client"] == ["2001:db8::7", 0]
    assert r.json()["scheme"] == "https"


def test_hops_trusted_ones_skipped():
    servers = serving(APP, "--forwarded-allow-ips", "127.0.0.1, 10.0.0.0/8")
    server = next(servers)
    try:
        # 10.1.2.3 and 10.0.0.7 are proxies we trust; 198.51.100.2 is the client's own
        # address as the first trusted proxy saw it; what it claims left of that is ignored.
        chain = "203.0.113.66, 198.51.100.2, 10.1.2.3, 10.0.0.7"
        assert ask(server, [("X-Forwarded-For", chain)])["client"] == ["198.51.100.2", 0]
        # Every hop trusted: the leftmost.
        assert ask(server, [("X-Forwarded-For", "10.9.9.9, 10.0.0.7")])["client"] == ["10.9.9.9", 0]
        # A hop's own port is kept.
        assert ask(server, [("X-Forwarded-For", "198.51.100.2:4711")])["client"] == ["198.51.100.2", 4711]
        assert ask(server, [("X-Forwarded-For", "[2001:db8::1]:443")])["client"] == ["2001:db8::1", 443]
    finally:
        next(servers, None)


def test_cidr_that_includes_the_peer():
    servers = serving(APP, "--forwarded-allow-ips", "10.0.0.1,127.0.0.0/8")
    server = next(servers)
    try:
        assert ask(server, [("X-Forwarded-For", "203.0.113.9")])["client"] == ["203.0.113.9", 0]
    finally:
        next(servers, None)


def test_forwarded_header(trusted):
    facts = ask(trusted, [("Forwarded", 'for="[2001:db8:cafe::17]:4711";proto=https;by=_lb')])
    assert facts["client"] == ["2001:db8:cafe::17", 4711]
    assert facts["scheme"] == "https"
    facts = ask(trusted, [("Forwarded", "for=203.0.113.9;proto=https, for=127.0.0.1;proto=http")])
    assert facts["client"] == ["203.0.113.9", 0]
    assert facts["scheme"] == "https"  # the proto of the client's own element


def test_x_forwarded_wins_over_forwarded(trusted):
    facts = ask(trusted, [("Forwarded", "for=198.51.100.77;proto=http"),
                          ("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https")])
    assert facts["client"] == ["203.0.113.9", 0]
    assert facts["scheme"] == "https"


def test_per_request_on_one_connection(trusted):
    """A proxy's keep-alive connection carries requests of many clients."""
    with RawConnection(trusted.addr) as conn:
        seen = []
        for headers in ([("X-Forwarded-For", "203.0.113.1")], [("X-Forwarded-For", "203.0.113.2"),
                        ("X-Forwarded-Proto", "https")], []):
            conn.send(request("GET", "/", headers))
            resp = conn.read_response()
            assert resp.status == 200
            seen.append(json.loads(resp.body))
        own_port = conn.local_port
    assert seen[0]["client"] == ["203.0.113.1", 0] and seen[0]["scheme"] == "http"
    assert seen[1]["client"] == ["203.0.113.2", 0] and seen[1]["scheme"] == "https"
    assert seen[2]["client"] == ["127.0.0.1", own_port] and seen[2]["scheme"] == "http"


@pytest.mark.parametrize("headers", [
    [("X-Forwarded-For", "")],
    [("X-Forwarded-For", "unknown")],
    [("X-Forwarded-For", "not-an-address")],
    [("X-Forwarded-For", "203.0.113.9:99999")],
    [("X-Forwarded-For", "300.1.2.3")],
    [("X-Forwarded-For", "[2001:db8::1")],
    [("X-Forwarded-Proto", "ftp")],
    [("X-Forwarded-Proto", "https, http")],
    [("Forwarded", "for=unknown;proto=https")],
    [("Forwarded", "for=_hidden")],
    [("Forwarded", 'for="203.0.113.9')],
    [("Forwarded", "for=203.0.113.9 junk")],
    [("Forwarded", "=")],
    [("Forwarded", "proto=gopher")],
], ids=lambda h: f"{h[0][0]}={h[0][1]!r}")
def test_malformed_values_change_nothing(trusted, headers):
    with RawConnection(trusted.addr) as conn:
        conn.send(request("GET", "/", headers))
        resp = conn.read_response()
        own_port = conn.local_port
    assert resp.status == 200, resp
    facts = json.loads(resp.body)
    assert facts["client"] == ["127.0.0.1", own_port]
    assert facts["scheme"] == "http"


def test_spoofed_headers_from_untrusted_peer(untrusted):
    with RawConnection(untrusted.addr) as conn:
        conn.send(request("GET", "/", [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https"),
                                       ("Forwarded", "for=198.51.100.1;proto=https")]))
        resp = conn.read_response()
        own_port = conn.local_port
    facts = json.loads(resp.body)
    assert facts["client"] == ["127.0.0.1", own_port]
    assert facts["scheme"] == "http"


def test_no_proxy_headers(narwhal):
    server = narwhal(APP, "--no-proxy-headers")
    facts = ask(server, [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https")])
    assert facts["client"][0] == "127.0.0.1"
    assert facts["scheme"] == "http"


def test_env_forwarded_allow_ips(narwhal):
    # The variable makes 127.0.0.1 untrusted ...
    server = narwhal(APP, env={"FORWARDED_ALLOW_IPS": "10.0.0.1"})
    assert ask(server, [("X-Forwarded-For", "203.0.113.9")])["client"][0] == "127.0.0.1"
    # ... and the flag wins over it.
    server = narwhal(APP, "--forwarded-allow-ips", "127.0.0.1", env={"FORWARDED_ALLOW_IPS": "10.0.0.1"})
    assert ask(server, [("X-Forwarded-For", "203.0.113.9")])["client"] == ["203.0.113.9", 0]


def test_star_trusts_everyone(narwhal):
    server = narwhal(APP, "--forwarded-allow-ips", "*")
    # Every hop trusted: the leftmost, as uvicorn.
    assert ask(server, [("X-Forwarded-For", "203.0.113.9, 198.51.100.2")])["client"] == ["203.0.113.9", 0]


@pytest.mark.parametrize("args,env,source", [
    (("--forwarded-allow-ips", "127.0.0.1,localhost"), {}, "--forwarded-allow-ips"),
    (("--forwarded-allow-ips", "10.0.0.0/33"), {}, "--forwarded-allow-ips"),
    ((), {"FORWARDED_ALLOW_IPS": "10.0.0.1, nope"}, "FORWARDED_ALLOW_IPS"),
    ((), {"NARWHAL_FORWARDED_ALLOW_IPS": "::1/200"}, "NARWHAL_FORWARDED_ALLOW_IPS"),
])
def test_bad_list_exit_2(args, env, source):
    r = run_cli(APP, "--port", "0", *args, env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "running on" not in out
    assert source in out and "invalid value" in out, out


def test_websocket_scheme_wss(trusted):
    async def session() -> dict:
        async with wsclient.connect(f"ws://{trusted.host}:{trusted.port}/",
                                    headers=[("X-Forwarded-For", "203.0.113.9"),
                                             ("X-Forwarded-Proto", "https")],
                                    open_timeout=GUARD, close_timeout=GUARD) as ws:
            return json.loads(await ws.recv())

    facts = asyncio.run(asyncio.wait_for(session(), GUARD))
    assert facts["type"] == "websocket"
    assert facts["scheme"] == "wss"
    assert facts["client"] == ["203.0.113.9", 0]


def test_access_log_names_forwarded_client(trusted):
    ask(trusted, [("X-Forwarded-For", "198.51.100.123")])
    trusted.wait_for_log(r'INFO: +198\.51\.100\.123:0 - "GET / HTTP/1\.1" 200', timeout=GUARD)


# --- nginx in front ---------------------------------------------------------------------

CLIENT_HOST = "127.0.0.2"  # a loopback address of its own: not the trusted 127.0.0.1


def test_nginx_http_proxy(narwhal, balancers, tmp_path):
    backends = [narwhal(APP, "--forwarded-allow-ips", "127.0.0.1") for _ in range(2)]
    headers = ("proxy_http_version 1.1; proxy_set_header Connection \"\";"
               " proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;")
    locations = (f"location / {{ proxy_pass http://narwhal; {headers}"
                 " proxy_set_header X-Forwarded-Proto $scheme; }\n"
                 # As a TLS-terminating balancer would say it.
                 f"location /terminated {{ proxy_pass http://narwhal; {headers}"
                 " proxy_set_header X-Forwarded-Proto https; }")
    lb = balancers.nginx(tmp_path, http=nginx_http_proxy([b.port for b in backends], locations))
    transport = httpx.HTTPTransport(local_address=CLIENT_HOST)
    pids = set()
    with httpx.Client(base_url=lb.url, transport=transport, trust_env=False, timeout=GUARD) as client:
        for _ in range(6):
            r = client.get("/")
            assert r.status_code == 200, r.text
            facts = r.json()
            assert facts["client"] == [CLIENT_HOST, 0], facts
            assert facts["scheme"] == "http"
            pids.add(facts["pid"])
        # A client's own X-Forwarded-For is left of what nginx appends: not believed.
        spoofed = client.get("/", headers={"X-Forwarded-For": "203.0.113.9"}).json()
        assert spoofed["client"] == [CLIENT_HOST, 0], spoofed
        terminated = client.get("/terminated").json()
        assert terminated["scheme"] == "https"
        assert terminated["client"] == [CLIENT_HOST, 0]
    assert pids == {b.pid for b in backends}, "nginx should have used both narwhal instances"


def test_nginx_http_proxy_untrusted(narwhal, balancers, tmp_path):
    """The control: with nginx not trusted, the app sees nginx's own address."""
    backend = narwhal(APP, "--forwarded-allow-ips", "10.0.0.1")
    locations = ("location / { proxy_pass http://narwhal;"
                 " proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; }")
    lb = balancers.nginx(tmp_path, http=nginx_http_proxy([backend.port], locations))
    with httpx.Client(base_url=lb.url, transport=httpx.HTTPTransport(local_address=CLIENT_HOST),
                      trust_env=False, timeout=GUARD) as client:
        facts = client.get("/").json()
    assert facts["client"][0] == "127.0.0.1"


# --- Unix socket peers -------------------------------------------------------------------

@pytest.mark.parametrize("allow,trusted_peer", [("127.0.0.1", False), ("unix:", True), ("*", True)])
def test_unix_socket_peer(narwhal, tmp_path, allow, trusted_peer):
    """A peer on a Unix socket has no address: trusted only under 'unix:' or '*'."""
    path = str(tmp_path / "narwhal.sock")
    narwhal(APP, "--uds", path, "--forwarded-allow-ips", allow)
    with httpx.Client(transport=httpx.HTTPTransport(uds=path), trust_env=False, timeout=GUARD) as client:
        facts = client.get("http://narwhal/", headers={"X-Forwarded-For": "203.0.113.9",
                                                       "X-Forwarded-Proto": "https"}).json()
    if trusted_peer:
        assert facts["client"] == ["203.0.113.9", 0] and facts["scheme"] == "https", facts
    else:
        assert facts["client"] is None and facts["scheme"] == "http", facts
