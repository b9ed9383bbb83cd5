#!/usr/bin/python3
"""Overload: narwhal and uvicorn with --limit-concurrency 32 under 400 clients.

The app (loadtests/apps/slow_app.py:app) awaits 50 ms per request, so 32 slots admit
at most 640 requests/s; 400 closed-loop clients ask for far more. uvicorn answers
503 at once over its limit; narwhal queues a request for up to --timeout-queue
(1 s by default) and then answers 503 with Retry-After.

Both servers are started once and kept running; runs are interleaved (round 1 =
each server once, round 2 with the server order rotated, ...) and medians over
rounds are reported. Two load generators, both with 400 keep-alive connections
(a closed connection, e.g. after uvicorn's "connection: close" 503, is reopened):

* wrk (-t2 -c400 --latency) with a Lua script that counts status codes in
  response() and prints the totals from done(). Its latency percentiles cover
  every response, 200s and 503s together (wrk's response() sees no latency).
* a Python asyncio raw-socket client (uvloop when importable) with 400
  connections that times every request itself, so it reports the latency of
  admitted (200) requests separately from the 503s.

Run from anywhere:  /usr/bin/python3 loadtests/overload.py --help
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from harness import (HOST, PYTHON, REPO, Server, check_alive, check_names, cpu_delta_seconds,
                     csv, fmt, free_port, machine, median, new_loop, on_sigterm, parse_wrk,
                     parser, print_commands, problem, rel, tree_cpu, try_start, without_port,
                     write_json)

MODULE = "slow_app:app"
ALL_SERVERS = ("narwhal", "uvicorn")
ALL_CLIENTS = ("wrk", "python")

# Counts responses per status in each wrk thread; done() adds the threads up.
# `ok`, `shed`, `other`, `retry_after` must be globals so that thread:get() sees them.
WRK_LUA = r"""
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok, shed, other, retry_after = 0, 0, 0, 0
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
  elseif status == 503 then
    shed = shed + 1
    for name, _ in pairs(headers) do
      if string.lower(name) == "retry-after" then
        retry_after = retry_after + 1
        break
      end
    end
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local o, s, x, r = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok")
    s = s + t:get("shed")
    x = x + t:get("other")
    r = r + t:get("retry_after")
  end
  io.write(string.format("STATUS ok=%d shed=%d other=%d retry_after=%d\n", o, s, x, r))
end
"""


# ---------------------------------------------------------------- servers

def server_argv(name: str, port: int, args: argparse.Namespace) -> list[str]:
    limit = ["--limit-concurrency", str(args.limit_concurrency)]
    if name == "narwhal":
        return [rel(args.narwhal_bin), MODULE, "--app-dir", "loadtests/apps",
                "--host", HOST, "--port", str(port), "--no-access-log", *limit,
                *shlex.split(args.narwhal_args)]
    if name == "uvicorn":
        return [PYTHON, "-m", "uvicorn", MODULE, "--app-dir", "loadtests/apps",
                "--host", HOST, "--port", str(port), "--loop", "uvloop", "--http", "httptools",
                "--no-access-log", *limit]
    raise ValueError(name)


def check_ok(port: int) -> Optional[str]:
    import http.client
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        body = resp.read()
        return None if (resp.status, body) == (200, b"OK") else \
            f"unexpected response {resp.status} {body[:60]!r}"
    except (OSError, http.client.HTTPException) as e:
        return f"check request failed: {e}"
    finally:
        conn.close()


def stats_lines(server: Server) -> list[str]:
    """narwhal's `narwhal stats: {...}` lines (SIGUSR1 / shutdown) from its log."""
    try:
        text = server.log.read_text(errors="replace")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if "narwhal stats" in line]


def count_log_lines(server: Server, needle: str) -> int:
    try:
        with open(server.log, errors="replace") as f:
            return sum(1 for line in f if needle in line)
    except OSError:
        return 0


# ---------------------------------------------------------------- wrk client

def wrk_argv(port: int, args: argparse.Namespace, duration: int, script: Path) -> list[str]:
    return ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration}s", "--latency",
            "-s", str(script), f"http://{HOST}:{port}/"]


def run_wrk(server: Server, args: argparse.Namespace, duration: int, script: Path) -> dict:
    argv = wrk_argv(server.port, args, duration, script)
    print(f"$ {shlex.join(argv)}", flush=True)
    assert server.proc is not None
    before = tree_cpu(server.proc.pid)
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=duration + 60)
    after = tree_cpu(server.proc.pid)
    w = parse_wrk(proc.stdout)
    res: dict = {"client": "wrk", "command": argv, "wrk_rc": proc.returncode,
                 "server_cpu_s": cpu_delta_seconds(before, after),
                 "p50_all_ms": w["p50_ms"], "p99_all_ms": w["p99_ms"],
                 "p50_ok_ms": None, "p99_ok_ms": None, "p99_shed_ms": None,
                 "socket_errors": w["socket_errors"]}
    m = re.search(r"^\s*\d+ requests in ([\d.]+)(us|ms|s|m)", proc.stdout, re.M)
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
    res["elapsed_s"] = float(m.group(1)) * scale[m.group(2)] if m else float(duration)
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                      proc.stdout):
        res["errors_detail"] = dict(zip(("connect", "read", "write", "timeout"),
                                        map(int, m.groups())))
    if m := re.search(r"^STATUS ok=(\d+) shed=(\d+) other=(\d+) retry_after=(\d+)", proc.stdout,
                      re.M):
        res["ok"], res["shed"], res["other"], res["retry_after"] = map(int, m.groups())
    else:
        res["error"] = (f"wrk rc={proc.returncode}, no STATUS line: "
                        f"{(proc.stderr or proc.stdout).strip()[-300:]}")
        res.update(ok=0, shed=0, other=0, retry_after=0)
    return finish(res)


# ---------------------------------------------------------------- Python client

class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 client connection; one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, request: bytes, timeout: float):
        self.loop, self.request, self.timeout = loop, request, timeout
        self.transport: Optional[asyncio.Transport] = None
        self.buf = bytearray()
        self.fut: Optional[asyncio.Future] = None
        self.timer: Optional[asyncio.TimerHandle] = None
        self.head: Optional[tuple[int, int, bool]] = None  # status, body length, close
        self.closed = False

    def connection_made(self, transport):  # type: ignore[override]
        self.transport = transport

    def send(self) -> asyncio.Future:
        self.fut = self.loop.create_future()
        self.buf.clear()
        self.head = None
        self.timer = self.loop.call_later(self.timeout, self._on_timeout)
        assert self.transport is not None
        self.transport.write(self.request)
        return self.fut

    def _settle(self, result=None, exc: Optional[BaseException] = None) -> None:
        if self.timer:
            self.timer.cancel()
            self.timer = None
        fut, self.fut = self.fut, None
        if fut is not None and not fut.done():
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(result)

    def _on_timeout(self) -> None:
        self.timer = None
        self._settle(exc=TimeoutError())
        self.closed = True
        if self.transport:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.fut is None:
            return  # unsolicited bytes: ignore
        self.buf += data
        if self.head is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buf[:end]).split(b"\r\n")
            try:
                status = int(lines[0].split(b" ", 2)[1])
            except (IndexError, ValueError):
                self._settle(exc=ConnectionError(f"bad status line {lines[0][:60]!r}"))
                self.abort()
                return
            length, close = 0, False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and b"close" in value.lower():
                    close = True
            del self.buf[:end + 4]
            self.head = (status, length, close)
        status, length, close = self.head
        if len(self.buf) >= length:
            if close:
                self.closed = True
            self._settle((status, close))
            if close:
                self.abort()

    def abort(self) -> None:
        self.closed = True
        if self.transport:
            self.transport.abort()

    def connection_lost(self, exc) -> None:  # type: ignore[override]
        self.closed = True
        self._settle(exc=ConnectionResetError("connection closed before the response ended"))


async def _py_load(port: int, connections: int, duration: float, timeout: float) -> dict:
    loop = asyncio.get_running_loop()
    request = f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    lat: dict[str, list[float]] = {"ok": [], "shed": [], "other": []}
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    stats = {"connects": 0}
    perf = time.perf_counter

    stopping = False
    conns: set[_Conn] = set()  # open connections, aborted at the end

    async def worker() -> None:
        conn: Optional[_Conn] = None
        # The flag, not only cancel(): a cancellation can get lost in a connect that
        # completes at the same moment, and the worker would then loop on forever.
        while not stopping:
            if conn is None or conn.closed:
                conns.discard(conn)  # type: ignore[arg-type]
                try:
                    async with asyncio.timeout(timeout):
                        _, conn = await loop.create_connection(
                            lambda: _Conn(loop, request, timeout), HOST, port)
                    conns.add(conn)
                    stats["connects"] += 1
                except (OSError, asyncio.TimeoutError):
                    errors["connect"] += 1
                    conn = None
                    await asyncio.sleep(0.01)
                    continue
            t0 = perf()
            try:
                status, _ = await conn.send()
            except TimeoutError:
                errors["timeout"] += 1
                continue
            except ConnectionError:
                errors["read"] += 1
                continue
            except OSError:
                errors["write"] += 1
                continue
            dt = perf() - t0
            if stopping:
                break
            lat["ok" if status == 200 else "shed" if status == 503 else "other"].append(dt)

    # SIGINT/SIGTERM end the run early (a Python signal handler raising inside the
    # loop would not reliably get out of it); run_python then raises KeyboardInterrupt.
    interrupted = asyncio.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        loop.add_signal_handler(sig, interrupted.set)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = perf()
    tasks = [asyncio.ensure_future(worker()) for _ in range(connections)]
    try:
        await asyncio.wait_for(interrupted.wait(), duration)
    except asyncio.TimeoutError:
        pass
    elapsed = perf() - start
    stopping = True
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in conns:
        c.abort()
    await asyncio.sleep(0)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    for sig, handler in previous.items():
        loop.remove_signal_handler(sig)  # leaves SIG_DFL / default_int_handler behind
        signal.signal(sig, handler)
    if interrupted.is_set():
        raise KeyboardInterrupt
    return {"lat": lat, "errors": errors, "elapsed_s": elapsed, **stats,
            "client_cpu_s": (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime)}


def percentile(values: list[float], pct: float) -> Optional[float]:
    if not values:
        return None
    values = sorted(values)  # nearest rank
    return values[min(len(values) - 1, max(0, math.ceil(pct / 100 * len(values)) - 1))]


def run_python(server: Server, args: argparse.Namespace, duration: int) -> dict:
    desc = (f"python overload.py client: {args.connections} connections, {duration}s, "
            f"timeout {args.timeout}s, GET http://{HOST}:{server.port}/")
    print(f"$ ({desc})", flush=True)
    assert server.proc is not None
    before = tree_cpu(server.proc.pid)
    with asyncio.Runner(loop_factory=new_loop) as runner:
        raw = runner.run(_py_load(server.port, args.connections, duration, args.timeout))
    after = tree_cpu(server.proc.pid)
    lat = raw["lat"]
    ms = lambda v: None if v is None else v * 1000  # noqa: E731
    res = {"client": "python", "command": desc, "elapsed_s": raw["elapsed_s"],
           "server_cpu_s": cpu_delta_seconds(before, after), "client_cpu_s": raw["client_cpu_s"],
           "ok": len(lat["ok"]), "shed": len(lat["shed"]), "other": len(lat["other"]),
           "retry_after": None, "connects": raw["connects"],
           "errors_detail": raw["errors"], "socket_errors": sum(raw["errors"].values()),
           "p50_ok_ms": ms(percentile(lat["ok"], 50)), "p99_ok_ms": ms(percentile(lat["ok"], 99)),
           "p99_shed_ms": ms(percentile(lat["shed"], 99)),
           "p50_all_ms": ms(percentile(lat["ok"] + lat["shed"] + lat["other"], 50)),
           "p99_all_ms": ms(percentile(lat["ok"] + lat["shed"] + lat["other"], 99))}
    return finish(res)


def finish(res: dict) -> dict:
    total = res["ok"] + res["shed"] + res["other"]
    el = res["elapsed_s"] or 1.0
    res.update(responses=total, admitted_rps=res["ok"] / el, shed_rps=res["shed"] / el,
               shed_pct=100.0 * res["shed"] / total if total else None,
               server_cpu_pct=100.0 * res["server_cpu_s"] / el)
    return res


# ---------------------------------------------------------------- reporting

def line(r: dict) -> str:
    e = r.get("errors_detail") or {}
    return (f"{r['admitted_rps']:>8.1f} ok/s  503 {fmt(r['shed_pct'])}%  other {r['other']}  "
            f"err {r['socket_errors']} {e}  p50/p99 200s {fmt(r['p50_ok_ms'])}/"
            f"{fmt(r['p99_ok_ms'])} ms  p99 all {fmt(r['p99_all_ms'])} ms  "
            f"server cpu {fmt(r['server_cpu_pct'], 0)}%"
            + (f"  client cpu {fmt(r['client_cpu_s'])}s" if "client_cpu_s" in r else "")
            + (f"  {r['error']}" if "error" in r else ""))


def summarise(results: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["server"], r["client"]), []).append(r)
    rows = []
    for (server, client), runs in groups.items():
        rows.append({
            "server": server, "client": client, "runs": len(runs),
            **{k: median([r.get(k) for r in runs]) for k in
               ("admitted_rps", "shed_rps", "shed_pct", "p50_ok_ms", "p99_ok_ms", "p99_shed_ms",
                "p50_all_ms", "p99_all_ms", "server_cpu_pct")},
            "other": sum(r["other"] for r in runs),
            "errors": sum(r["socket_errors"] for r in runs),
            "retry_after_missing": (sum(r["shed"] - r["retry_after"] for r in runs)
                                    if all(r.get("retry_after") is not None for r in runs)
                                    else None),
            "failed_runs": sum(1 for r in runs if "error" in r),
        })
    return rows


def print_table(rows: list[dict], rounds: int) -> None:
    print(f"\n== overload (median of {rounds} rounds; other/errors summed) ==")
    print(f"{'server':<9}{'client':<8}{'200/s':>9}{'503/s':>9}{'503 %':>7}{'other':>7}"
          f"{'errors':>8}{'p50 200':>9}{'p99 200':>9}{'p99 503':>9}{'p99 all':>9}{'srv CPU':>8}")
    for r in rows:
        print(f"{r['server']:<9}{r['client']:<8}{fmt(r['admitted_rps']):>9}"
              f"{fmt(r['shed_rps']):>9}{fmt(r['shed_pct']):>7}{r['other']:>7}{r['errors']:>8}"
              f"{fmt(r['p50_ok_ms']):>9}{fmt(r['p99_ok_ms']):>9}{fmt(r['p99_shed_ms']):>9}"
              f"{fmt(r['p99_all_ms']):>9}{fmt(r['server_cpu_pct'], 0) + '%':>8}"
              + (f"  ({r['failed_runs']} failed runs)" if r["failed_runs"] else ""))


def markdown(rows: list[dict], meta: dict) -> str:
    out = [f"Machine: {meta['machine']}. Load generators run on the same cores as the server. "
           f"App: `{MODULE}` (awaits 50 ms), `--limit-concurrency {meta['limit']}`, "
           f"{meta['connections']} connections, {meta['rounds']} interleaved rounds of "
           f"{meta['duration']}s, medians shown (other and errors summed over rounds). "
           "Latencies in ms; wrk's cover all responses, the Python client's are split "
           "by status.", "",
           "| server | client | admitted 200/s | 503/s | 503 % of responses | other status "
           "| socket errors | p50 200s | p99 200s | p99 503s | p99 all | server CPU |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['server']} | {r['client']} | {fmt(r['admitted_rps'], 0)} "
                   f"| {fmt(r['shed_rps'], 0)} | {fmt(r['shed_pct'])} | {r['other']} "
                   f"| {r['errors']} | {fmt(r['p50_ok_ms'])} | {fmt(r['p99_ok_ms'])} "
                   f"| {fmt(r['p99_shed_ms'])} | {fmt(r['p99_all_ms'])} "
                   f"| {fmt(r['server_cpu_pct'], 0)}% |")
    out += ["", "Commands (ports vary per run; `status_counts.lua` is printed by "
            "`loadtests/overload.py --print-lua`):", "", "```", *meta["commands"], "```"]
    return "\n".join(out)


# ---------------------------------------------------------------- main

def parse_args() -> argparse.Namespace:
    p = parser(__doc__)
    p.add_argument("--servers", type=csv, default=list(ALL_SERVERS),
                   help="comma list of narwhal,uvicorn (default both)")
    p.add_argument("--clients", type=csv, default=list(ALL_CLIENTS),
                   help="comma list of wrk,python (default both)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=10, help="seconds per run (integer)")
    p.add_argument("--warmup", type=int, default=1, help="seconds of wrk per server start")
    p.add_argument("--connections", type=int, default=400)
    p.add_argument("--threads", type=int, default=2, help="wrk threads (-t)")
    p.add_argument("--timeout", type=float, default=2.0,
                   help="Python client: per-request timeout, s (wrk's default is 2 s too)")
    p.add_argument("--limit-concurrency", type=int, default=32)
    p.add_argument("--narwhal-bin", type=Path, default=REPO / "build" / "narwhal")
    p.add_argument("--narwhal-args", default="",
                   help='extra narwhal flags, one string, e.g. "--timeout-queue 0.5"')
    p.add_argument("--json", type=Path, help="write raw per-run results here")
    p.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    p.add_argument("--print-lua", action="store_true",
                   help="print the wrk status-counting script (status_counts.lua) and exit")
    args = p.parse_args()
    check_names(p, "server", args.servers, ALL_SERVERS)
    check_names(p, "client", args.clients, ALL_CLIENTS)
    if args.rounds < 1 or args.duration < 1 or args.warmup < 0 or args.connections < 1:
        p.error("--rounds, --duration, --connections must be >= 1, --warmup >= 0")
    return args


def main() -> int:
    args = parse_args()
    if args.print_lua:
        print(WRK_LUA.lstrip(), end="")
        return 0
    signal.signal(signal.SIGTERM, on_sigterm)
    logdir = Path(tempfile.mkdtemp(prefix="narwhal-overload-"))
    script = logdir / "status_counts.lua"
    script.write_text(WRK_LUA)
    host = machine()
    print(f"# {host}; server logs and the wrk script in {logdir}", flush=True)
    results: list[dict] = []
    commands: list[str] = []
    problems: list[str] = []
    servers: list[Server] = []
    notes: list[str] = []
    try:
        for name in args.servers:
            port = free_port()
            srv = Server(name, server_argv(name, port, args), port, logdir / f"{name}.log")
            if not try_start(srv, name, problems):
                continue
            commands.append(shlex.join(srv.argv))
            if bad := check_ok(port):
                problem(problems, f"{name}: {bad}")
            if args.warmup and "wrk" in args.clients:
                warm = run_wrk(srv, args, args.warmup, script)
                print(f"  warm-up {name}: {line(warm)}", flush=True)
            servers.append(srv)
        for rnd in range(1, args.rounds + 1):
            shift = (rnd - 1) % max(len(servers), 1)
            for srv in servers[shift:] + servers[:shift]:
                for client in args.clients:
                    if not srv.alive():
                        continue
                    r = (run_wrk(srv, args, args.duration, script) if client == "wrk"
                         else run_python(srv, args, args.duration))
                    r.update(server=srv.name, round=rnd)
                    results.append(r)
                    cmd = r["command"]
                    commands.append(shlex.join(cmd) if isinstance(cmd, list) else f"({cmd})")
                    print(f"  r{rnd} {srv.name:<8} {client:<7}{line(r)}", flush=True)
                    check_alive(srv, srv.name, problems)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping servers", flush=True)
        return 130
    finally:
        for srv in servers:
            srv.stop()
    for srv in servers:
        if srv.name == "narwhal":
            for s in stats_lines(srv)[-1:]:
                notes.append(f"narwhal's last stats line (whole run incl. warm-up): {s}")
        if srv.name == "uvicorn":
            n = count_log_lines(srv, "Exceeded concurrency limit")
            notes.append(f"uvicorn logged 'Exceeded concurrency limit.' {n} times "
                         "(one warning per 503, even with --no-access-log)")

    rows = summarise(results)
    print_table(rows, args.rounds)
    for r in rows:
        if r["client"] == "wrk" and r["retry_after_missing"]:
            print(f"{r['server']}: {r['retry_after_missing']} 503 responses without a "
                  "Retry-After header (counted by wrk)")
    for n in notes:
        print(n)
    meta = {"machine": host, "rounds": args.rounds, "duration": args.duration,
            "connections": args.connections, "limit": args.limit_concurrency,
            "commands": list(dict.fromkeys(without_port(c).replace(str(script), script.name)
                                           for c in commands)), "notes": notes}
    print_commands(commands, problems)
    write_json(args.json, {"meta": meta, "summary": rows, "runs": results}, default=str)
    if args.markdown:
        print("\n" + markdown(rows, meta))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
