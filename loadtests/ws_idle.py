#!/usr/bin/python3
"""Server memory per idle WebSocket: narwhal and uvicorn, with and without deflate.

For each configuration (server x permessage-deflate on/off) a fresh server runs the
echo app (loadtests/apps/ws_echo.py). This script then

1. opens and closes a few warm-up WebSockets (one echo each), waits 0.5 s, and takes
   the server's **baseline** VmRSS: the median of samples over --baseline seconds;
2. opens --sockets idle WebSockets (default 10,000) with raw-socket asyncio handshakes,
   at most --concurrency in flight; with deflate on, the client offers
   `permessage-deflate; client_max_window_bits` (what browsers and the websockets
   library send), with deflate off it offers nothing;
3. waits --settle seconds, then takes the **loaded** VmRSS: the median of samples over
   --hold seconds. Per idle socket = (loaded - baseline) / sockets open;
4. checks that every socket is still open (none saw EOF or a close frame from the
   server; server pings are answered with pongs all along), then sends one text message
   on --probe sockets (default: all) and waits for the echo; when all were probed, the
   RSS after one message per socket is reported too (compressors that are allocated on
   first use show up there);
5. closes every socket (close frame, then the TCP socket) and stops the server by PID.

Only the server's memory is measured: VmRSS from /proc/<pid>/status of the server
process and its descendants. The client is this process, and its own memory (Python
objects per socket) is not part of the number.

Descriptors: this process raises its soft RLIMIT_NOFILE to the hard limit; servers are
started with the same raised limit (preexec_fn); narwhal also raises its own.

Run from anywhere:  /usr/bin/python3 loadtests/ws_idle.py --help
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import resource
import shlex
import signal
import socket
import statistics
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Optional

from harness import (HOST, PYTHON, REPO, WsServer, check_names, csv, descendants,
                     ensure_nofile, fmt, free_port, machine, new_loop, on_sigterm, parser,
                     print_commands, rel, rss_bytes, without_port, write_json)

ALL_SERVERS = ("narwhal", "uvicorn")
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OFFER = "permessage-deflate; client_max_window_bits"
KiB, MiB = 1024, 1 << 20


# ---------------------------------------------------------------- servers

def server_argv(name: str, deflate: bool, port: int, args: argparse.Namespace) -> list[str]:
    if name == "narwhal":
        return [rel(args.narwhal_bin), "ws_echo:app", "--app-dir", "loadtests/apps",
                "--no-access-log", *([] if deflate else ["--no-ws-per-message-deflate"]),
                "--host", HOST, "--port", str(port), *shlex.split(args.narwhal_args)]
    if name == "uvicorn":
        return [PYTHON, "-m", "uvicorn", "ws_echo:app", "--app-dir", "loadtests/apps",
                "--host", HOST, "--port", str(port), "--loop", "uvloop", "--http", "httptools",
                "--ws", "websockets", "--no-access-log",
                "--ws-per-message-deflate", "True" if deflate else "False",
                *shlex.split(args.uvicorn_args)]
    raise ValueError(name)


async def sample_rss(pid: int, seconds: float, interval: float = 0.05) -> list[int]:
    """VmRSS samples of the server tree; the event loop keeps serving the sockets."""
    out: list[int] = []
    end = time.monotonic() + seconds
    while True:
        if v := rss_bytes(descendants(pid)):
            out.append(v)
        if time.monotonic() >= end:
            return out
        await asyncio.sleep(interval)


# ---------------------------------------------------------------- client

def frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (FIN set, no RSV bits)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


class Conn:
    """One idle client socket: answers pings, notices EOF/close, delivers echoes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, deflate: bool,
                 rest: bytes):
        self.loop, self.sock, self.deflate = loop, sock, deflate
        self.buf = bytearray(rest)
        self.closed_by_server: Optional[str] = None
        self.waiter: Optional[asyncio.Future] = None
        self.inflater = zlib.decompressobj(-15) if deflate else None
        self.pings = 0
        loop.add_reader(sock.fileno(), self.on_readable)
        if self.buf:
            self.parse()

    def on_readable(self) -> None:
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            return self.gone(f"recv: {e}")
        if not data:
            return self.gone("EOF")
        self.buf += data
        self.parse()

    def parse(self) -> None:
        while len(self.buf) >= 2:
            b0, b1 = self.buf[0], self.buf[1]
            n, pos = b1 & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    return
                n, pos = struct.unpack_from("!H", self.buf, 2)[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    return
                n, pos = struct.unpack_from("!Q", self.buf, 2)[0], 10
            if b1 & 0x80 or len(self.buf) < pos + n:
                if b1 & 0x80:
                    return self.gone("masked frame from server")
                return
            payload = bytes(self.buf[pos:pos + n])
            del self.buf[:pos + n]
            opcode, rsv1 = b0 & 0x0F, bool(b0 & 0x40)
            if opcode == 0x9:  # ping: answer now
                self.pings += 1
                self.send(frame(0xA, payload))
            elif opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return self.gone(f"close frame {code}")
            elif opcode in (0x1, 0x2):  # whole messages only: the echoes are small
                if rsv1 and self.inflater is not None:
                    payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
                if self.waiter is not None and not self.waiter.done():
                    self.waiter.set_result(payload)

    def send(self, data: bytes) -> None:
        try:
            self.sock.send(data)  # small frames into an empty send buffer
        except OSError as e:
            self.gone(f"send: {e}")

    def gone(self, why: str) -> None:
        if self.closed_by_server is None:
            self.closed_by_server = why
        self.detach()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(why))

    def detach(self) -> None:
        try:
            self.loop.remove_reader(self.sock.fileno())
        except (ValueError, OSError):
            pass

    async def echo(self, text: bytes, timeout: float) -> bool:
        if self.closed_by_server:
            return False
        self.waiter = self.loop.create_future()
        self.send(frame(0x1, text))
        try:
            return await asyncio.wait_for(self.waiter, timeout) == text
        except (asyncio.TimeoutError, ConnectionError):
            return False
        finally:
            self.waiter = None

    def close(self) -> None:
        self.detach()
        if self.closed_by_server is None:
            try:
                self.sock.send(frame(0x8, struct.pack("!H", 1000)))
            except OSError:
                pass
        self.sock.close()


async def open_ws(loop: asyncio.AbstractEventLoop, port: int, deflate: bool,
                  timeout: float) -> Conn:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        async def handshake() -> Conn:
            await loop.sock_connect(sock, (HOST, port))
            key = base64.b64encode(os.urandom(16))
            ext = f"Sec-WebSocket-Extensions: {OFFER}\r\n" if deflate else ""
            req = (f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
                   f"Sec-WebSocket-Version: 13\r\n{ext}User-Agent: ws_idle\r\n\r\n")
            await loop.sock_sendall(sock, req.encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = await loop.sock_recv(sock, 4096)
                if not chunk:
                    raise ConnectionError("EOF during handshake")
                buf += chunk
            head, rest = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            if not lines[0].startswith("HTTP/1.1 101"):
                raise ConnectionError(f"handshake answered {lines[0]!r}")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            want = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
            if headers.get("sec-websocket-accept") != want:
                raise ConnectionError("bad Sec-WebSocket-Accept")
            negotiated = "permessage-deflate" in headers.get("sec-websocket-extensions", "")
            return Conn(loop, sock, negotiated, rest)
        return await asyncio.wait_for(handshake(), timeout)
    except BaseException:
        sock.close()
        raise


async def open_many(loop, port: int, deflate: bool, n: int, concurrency: int,
                    timeout: float) -> tuple[list[Conn], list[str]]:
    sem = asyncio.Semaphore(concurrency)
    conns: list[Conn] = []
    errors: list[str] = []

    async def one() -> None:
        async with sem:
            try:
                conns.append(await open_ws(loop, port, deflate, timeout))
            except (OSError, ConnectionError, asyncio.TimeoutError) as e:
                errors.append(f"{type(e).__name__}: {e}")

    await asyncio.gather(*(one() for _ in range(n)))
    return conns, errors


async def probe_many(conns: list[Conn], count: int, concurrency: int) -> tuple[int, int]:
    """Echo one message on `count` sockets spread over the list; (probed, answered)."""
    if count <= 0 or not conns:
        return 0, 0
    step = max(1, len(conns) // count)
    sample = conns[::step][:count]
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int, c: Conn) -> bool:
        async with sem:
            return await c.echo(f"probe {i}".encode(), 10.0)

    results = await asyncio.gather(*(one(i, c) for i, c in enumerate(sample)))
    return len(sample), sum(results)


async def measure(server: WsServer, deflate: bool, args: argparse.Namespace) -> dict:
    loop = asyncio.get_running_loop()
    pid = server.proc.pid
    res: dict = {"server": server.name, "deflate": deflate, "sockets": args.sockets,
                 "command": shlex.join(server.argv)}
    # warm-up: a few sockets with one echo each, then closed
    warm, werr = await open_many(loop, server.port, deflate, 4, 4, args.connect_timeout)
    ok = [await c.echo(b"warm-up", 5.0) for c in warm]
    for c in warm:
        c.close()
    if werr or not all(ok):
        res["error"] = f"warm-up failed: {werr[:1]} echo ok {sum(ok)}/{len(warm)}"
        return res
    await asyncio.sleep(0.5)
    base = await sample_rss(pid, args.baseline)
    res["baseline"] = statistics.median(base)

    t0 = time.monotonic()
    conns, errors = await open_many(loop, server.port, deflate, args.sockets, args.concurrency,
                                    args.connect_timeout)
    res.update(open_s=time.monotonic() - t0, opened=len(conns), open_errors=len(errors),
               first_open_error=errors[0] if errors else None,
               negotiated=sum(1 for c in conns if c.deflate))
    print(f"  opened {len(conns)}/{args.sockets} in {res['open_s']:.1f} s"
          f" ({len(errors)} errors{', first: ' + errors[0] if errors else ''}); "
          f"deflate negotiated on {res['negotiated']}", flush=True)
    try:
        await asyncio.sleep(args.settle)
        loaded = await sample_rss(pid, args.hold)
        res["loaded"] = statistics.median(loaded)
        res["loaded_max"] = max(loaded)
        if conns:
            res["per_socket"] = (res["loaded"] - res["baseline"]) / len(conns)
        closed = [c.closed_by_server for c in conns if c.closed_by_server]
        res["closed_by_server"] = len(closed)
        res["first_close"] = closed[0] if closed else None
        res["pings_answered"] = sum(c.pings for c in conns)
        probe = len(conns) if args.probe is None else min(args.probe, len(conns))
        res["probed"], res["echo_ok"] = await probe_many(conns, probe, args.concurrency)
        if res["probed"] == len(conns) and conns:
            await asyncio.sleep(0.5)
            after = await sample_rss(pid, 1.0)
            res["after_msg"] = statistics.median(after)
            res["per_socket_after_msg"] = (res["after_msg"] - res["baseline"]) / len(conns)
        res["still_open"] = sum(1 for c in conns if not c.closed_by_server)
    finally:
        for c in conns:
            c.close()
    return res


# ---------------------------------------------------------------- reporting

def mib(v: Optional[float]) -> str:
    return fmt(v / MiB if v is not None else None, 1)


def kib(v: Optional[float]) -> str:
    return fmt(v / KiB if v is not None else None, 2)


def rows_with_ratio(results: list[dict]) -> list[dict]:
    for r in results:
        base = next((b for b in results if b["server"] == "uvicorn"
                     and b["deflate"] == r["deflate"] and b.get("per_socket")), None)
        r["ratio_vs_uvicorn"] = (base["per_socket"] / r["per_socket"]
                                 if base and r.get("per_socket") else None)
    return results


def table(results: list[dict]) -> str:
    out = ["| server | deflate | open / asked | deflate negotiated | baseline MiB "
           "| with idle sockets MiB | KiB per idle socket | uvicorn / this | after 1 msg each: KiB per socket "
           "| closed by server | echo ok / probed | open time s |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        if "error" in r and "loaded" not in r:
            out.append(f"| {r['server']} | {'on' if r['deflate'] else 'off'} | "
                       f"{r['error']} |||||||||")
            continue
        out.append(f"| {r['server']} | {'on' if r['deflate'] else 'off'} "
                   f"| {r.get('opened', 0):,} / {r['sockets']:,} | {r.get('negotiated', 0):,} "
                   f"| {mib(r.get('baseline'))} | {mib(r.get('loaded'))} "
                   f"| {kib(r.get('per_socket'))} | {fmt(r.get('ratio_vs_uvicorn'), 2)} "
                   f"| {kib(r.get('per_socket_after_msg'))} "
                   f"| {r.get('closed_by_server', '-')} "
                   f"| {r.get('echo_ok', 0):,} / {r.get('probed', 0):,} "
                   f"| {fmt(r.get('open_s'), 1)} |")
    return "\n".join(out)


# ---------------------------------------------------------------- main

def parse_args() -> argparse.Namespace:
    p = parser(__doc__)
    p.add_argument("--servers", type=csv, default=list(ALL_SERVERS))
    p.add_argument("--deflate", type=csv, default=["on", "off"],
                   help="on, off or on,off (default): server flag and client offer")
    p.add_argument("--sockets", type=int, default=10000)
    p.add_argument("--concurrency", type=int, default=200, help="handshakes in flight")
    p.add_argument("--connect-timeout", type=float, default=30.0, help="per socket")
    p.add_argument("--baseline", type=float, default=1.0, help="seconds of baseline samples")
    p.add_argument("--settle", type=float, default=1.0,
                   help="seconds after the last socket opened before sampling")
    p.add_argument("--hold", type=float, default=3.0, help="seconds of samples with N open")
    p.add_argument("--probe", type=int, default=None,
                   help="sockets to echo on at the end (default: all)")
    p.add_argument("--time-limit", type=float, default=300.0,
                   help="seconds per configuration before it is abandoned")
    p.add_argument("--narwhal-bin", type=Path, default=REPO / "build" / "narwhal")
    p.add_argument("--narwhal-args", default="")
    p.add_argument("--uvicorn-args", default="")
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args()
    check_names(p, "server", args.servers, ALL_SERVERS)
    for d in args.deflate:
        if d not in ("on", "off"):
            p.error("--deflate takes on, off or on,off")
    if args.sockets < 1 or args.concurrency < 1:
        p.error("--sockets and --concurrency must be >= 1")
    return args


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    ensure_nofile(args.sockets + 256)
    logdir = Path(tempfile.mkdtemp(prefix="narwhal-wsidle-"))
    host = machine()
    print(f"# {host}; RLIMIT_NOFILE soft {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}; "
          f"server logs in {logdir}", flush=True)
    results: list[dict] = []
    problems: list[str] = []
    loop = new_loop()
    try:
        for name in args.servers:
            for d in args.deflate:
                deflate = d == "on"
                print(f"\n### {name}, deflate {d}", flush=True)
                port = free_port()
                srv = WsServer(name, server_argv(name, deflate, port, args), port,
                               logdir / f"{name}-deflate-{d}.log")
                try:
                    srv.start()
                    r = loop.run_until_complete(
                        asyncio.wait_for(measure(srv, deflate, args), args.time_limit))
                except (OSError, RuntimeError, asyncio.TimeoutError) as e:
                    r = {"server": name, "deflate": deflate, "sockets": args.sockets,
                         "command": shlex.join(srv.argv), "error": f"{type(e).__name__}: {e}"}
                finally:
                    r_alive = srv.alive()
                    srv.stop()
                r["server_alive"] = r_alive
                results.append(r)
                if "error" in r:
                    problems.append(f"{name}/deflate {d}: {r['error']}\n{srv.log_tail()}")
                if r.get("opened") is not None and r["opened"] < args.sockets:
                    problems.append(f"{name}/deflate {d}: opened {r['opened']}/{args.sockets}: "
                                    f"{r.get('first_open_error')}")
                if r.get("closed_by_server"):
                    problems.append(f"{name}/deflate {d}: {r['closed_by_server']} sockets closed "
                                    f"by the server while idle (first: {r['first_close']})")
                if r.get("probed") and r.get("echo_ok") != r.get("probed"):
                    problems.append(f"{name}/deflate {d}: echo ok on {r['echo_ok']}/{r['probed']}")
                if not r_alive:
                    problems.append(f"{name}/deflate {d}: server died\n{srv.log_tail()}")
                print(f"  baseline {mib(r.get('baseline'))} MiB, with {r.get('opened')} idle "
                      f"sockets {mib(r.get('loaded'))} MiB: {kib(r.get('per_socket'))} KiB/socket; "
                      f"after one message each {kib(r.get('per_socket_after_msg'))} KiB/socket; "
                      f"closed by server {r.get('closed_by_server')}, echo ok "
                      f"{r.get('echo_ok')}/{r.get('probed')}"
                      + (f"  ERROR {r['error']}" if "error" in r else ""), flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", flush=True)
        return 130
    finally:
        loop.close()

    rows_with_ratio(results)
    print("\n" + table(results))
    commands = [without_port(r["command"]) for r in results]
    print_commands(commands, problems, "Commands (ports vary per run):")
    write_json(args.json, {"machine": host, "args": {k: str(v) for k, v in vars(args).items()},
                           "runs": results})
    if args.markdown:
        print(f"\nMachine: {host}. {args.sockets:,} idle WebSockets per server, opened "
              f"{args.concurrency} at a time; VmRSS of the server process, median of samples "
              f"over {args.hold:g} s after {args.settle:g} s of settling, against the median "
              f"of a {args.baseline:g} s baseline. Per idle socket = (loaded - baseline) / "
              f"sockets open; \"uvicorn / this\" is uvicorn's per-socket cost (same deflate "
              f"setting) divided by this row's.\n")
        print(table(results))
        print("\nCommands (ports vary per run):\n\n```")
        print(f"/usr/bin/python3 loadtests/ws_idle.py {shlex.join(sys.argv[1:])}".rstrip())
        for c in commands:
            print(c)
        print("```")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
