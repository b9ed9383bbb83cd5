#!/usr/bin/python3
"""Server memory (VmRSS) under slow clients, narwhal and uvicorn side by side.

Scenarios (apps in loadtests/apps/slow_app.py), each against a freshly started
server so that every scenario has its own baseline:

* upload:  the app reads a 200 MiB request body, sleeping 1 ms between receive()
           calls; the client sends it as fast as TCP lets it.
* reader:  the app streams 1 GiB in 64 KiB messages; the client reads 64 KiB every
           10 ms (at most 6.4 MiB/s, so the transfer is cut short by --time-limit).
* stalled: the same app; the client reads 1 MiB, then stops reading and holds the
           socket open for --hold seconds before closing it.

A sampler thread reads VmRSS from /proc/<pid>/status (summed over the server
process and any descendants) every 50 ms. The baseline is the highest sample in a
1 s idle window after one small warm-up request; peak is the highest sample during
the scenario and the --settle seconds after the client finished; growth = peak -
baseline. The kernel's own high-water mark (VmHWM, reset after the baseline by
writing 5 to /proc/<pid>/clear_refs) catches peaks between samples.

Run from anywhere:  /usr/bin/python3 loadtests/rss.py --help
"""

from __future__ import annotations

import argparse
import shlex
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

from harness import (HOST, PYTHON, REPO, Server, check_names, cpu_delta_seconds, csv,
                     descendants, fmt, free_port, machine, on_sigterm, parser, print_commands,
                     rel, rss_bytes, status_kib, tree_cpu, without_port, write_json)

MiB = 1 << 20
UPLOAD_BYTES = 200 * MiB
STREAM_BYTES = 1 << 30  # slow_app.STREAM_BYTES
READ_CHUNK = 64 * 1024
ALL_SERVERS = ("narwhal", "uvicorn")
# scenario -> app attribute in slow_app
SCENARIOS = {"upload": "slow_upload", "reader": "stream", "stalled": "stream"}


# ---------------------------------------------------------------- memory sampling

class Sampler(threading.Thread):
    """VmRSS of a process tree every `interval` seconds, as (monotonic time, bytes)."""

    def __init__(self, pid: int, interval: float = 0.05):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []
        self.stop_event = threading.Event()
        self.pids = [pid]

    def run(self) -> None:
        last_scan = 0.0
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now - last_scan >= 1.0:  # look for new child processes once a second
                self.pids, last_scan = descendants(self.pid), now
            if total := rss_bytes(self.pids):
                self.samples.append((now, total))
            self.stop_event.wait(self.interval)

    def window(self, t0: float, t1: float = float("inf")) -> list[int]:
        return [v for t, v in self.samples if t0 <= t <= t1]

    def stop(self) -> None:
        self.stop_event.set()
        self.join(2)


def reset_hwm(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- clients

def connect(port: int) -> socket.socket:
    s = socket.create_connection((HOST, port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_head(s: socket.socket) -> tuple[int, bytes]:
    """Reads up to the end of the response head; returns (status, bytes after the head)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = s.recv(65536)
        if not data:
            raise ConnectionError(f"closed before the response head ({buf[:60]!r})")
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), rest


def warm_up(port: int, scenario: str) -> str:
    """One small request so that first-request imports and caches count in the baseline."""
    with connect(port) as s:
        if scenario == "upload":
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\n\r\n" + b"x" * 1024)
            status, rest = read_head(s)
            return f"warm-up POST 1 KiB: {status} {rest[:20]!r}"
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, rest = read_head(s)
        got = len(rest)
        while got < MiB:
            data = s.recv(65536)
            if not data:
                break
            got += len(data)
        return f"warm-up GET: {status}, read {got / MiB:.1f} MiB then closed"


def client_upload(port: int, limit: float) -> dict:
    block = b"\0" * MiB
    t0 = time.monotonic()
    sent, cut, status, answer = 0, False, None, None
    with connect(port) as s:
        s.settimeout(0.5)
        s.sendall(f"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                  f"Content-Length: {UPLOAD_BYTES}\r\n\r\n".encode())
        view = memoryview(block)
        while sent < UPLOAD_BYTES:
            if time.monotonic() - t0 > limit:
                cut = True
                break
            try:
                n = s.send(view[:min(len(block), UPLOAD_BYTES - sent)])
            except socket.timeout:
                continue  # the server is not reading: TCP backpressure
            sent += n
        elapsed = time.monotonic() - t0
        if not cut:
            s.settimeout(max(1.0, limit - elapsed + 5))
            try:
                status, rest = read_head(s)
                answer = rest.decode(errors="replace")[:20]
            except (OSError, ValueError) as e:
                answer = f"no response: {e}"
    return {"bytes": sent, "elapsed_s": elapsed, "cut": cut, "status": status,
            "answer": answer, "mib_s": sent / MiB / elapsed if elapsed else None}


def client_reader(port: int, limit: float, stall_after: Optional[int], hold: float) -> dict:
    t0 = time.monotonic()
    got, cut, status = 0, False, None
    with connect(port) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, rest = read_head(s)
        got = len(rest)
        s.settimeout(5)
        while got < STREAM_BYTES:
            if stall_after is not None and got >= stall_after:
                break
            if time.monotonic() - t0 > limit:
                cut = True
                break
            want = READ_CHUNK
            while want > 0:  # 64 KiB, then a pause
                data = s.recv(want)
                if not data:
                    raise ConnectionError("server closed the stream early")
                got += len(data)
                want -= len(data)
            time.sleep(0.010)
        elapsed = time.monotonic() - t0
        if stall_after is not None:
            time.sleep(hold)  # socket open, nothing read
    return {"bytes": got, "elapsed_s": elapsed, "cut": cut, "status": status,
            "mib_s": got / MiB / elapsed if elapsed else None,
            "held_s": hold if stall_after is not None else 0.0}


# ---------------------------------------------------------------- one run

def server_argv(name: str, attr: str, port: int, args: argparse.Namespace) -> list[str]:
    if name == "narwhal":
        return [rel(args.narwhal_bin), f"slow_app:{attr}", "--app-dir", "loadtests/apps",
                "--host", HOST, "--port", str(port), "--no-access-log",
                *shlex.split(args.narwhal_args)]
    return [PYTHON, "-m", "uvicorn", f"slow_app:{attr}", "--app-dir", "loadtests/apps",
            "--host", HOST, "--port", str(port), "--loop", "uvloop", "--http", "httptools",
            "--no-access-log"]


def run_one(name: str, scenario: str, args: argparse.Namespace, logdir: Path,
            rnd: int) -> dict:
    port = free_port()
    srv = Server(name, server_argv(name, SCENARIOS[scenario], port, args), port,
                 logdir / f"{name}-{scenario}-r{rnd}.log")
    res: dict = {"server": name, "scenario": scenario, "round": rnd,
                 "command": shlex.join(srv.argv)}
    sampler: Optional[Sampler] = None
    try:
        srv.start()
        assert srv.proc is not None
        pid = srv.proc.pid
        sampler = Sampler(pid, args.interval)
        sampler.start()
        res["warm_up"] = warm_up(port, scenario)
        time.sleep(0.3)  # let the warm-up's tail (uvicorn streams on after the close) end
        t_base = time.monotonic()
        time.sleep(1.0)
        base = sampler.window(t_base)
        res["baseline"] = max(base) if base else None
        res["hwm_reset"] = reset_hwm(pid)
        cpu0 = tree_cpu(pid)
        t_start = time.monotonic()
        if scenario == "upload":
            res["client"] = client_upload(port, args.time_limit)
        elif scenario == "reader":
            res["client"] = client_reader(port, args.time_limit, None, 0.0)
        else:
            res["client"] = client_reader(port, args.time_limit, MiB, args.hold)
        t_end = time.monotonic()
        time.sleep(args.settle)
        during = sampler.window(t_start)
        res["peak"] = max(during) if during else None
        res["after"] = sampler.samples[-1][1] if sampler.samples else None
        res["samples"] = len(during)
        res["hwm"] = (status_kib(pid, "VmHWM") or 0) * 1024 if res["hwm_reset"] else None
        res["server_cpu_s"] = cpu_delta_seconds(cpu0, tree_cpu(pid))
        res["client_s"] = t_end - t_start
        if res["baseline"] is not None and res["peak"] is not None:
            res["growth"] = res["peak"] - res["baseline"]
        if not srv.alive():
            res["error"] = f"server died (rc={srv.proc.returncode})\n{srv.log_tail()}"
    except (OSError, RuntimeError, ValueError, IndexError) as e:
        res["error"] = f"{type(e).__name__}: {e}"
        if srv.proc is not None:
            res["error"] += f"\n{srv.log_tail()}"
    finally:
        if sampler:
            sampler.stop()
        srv.stop()
    return res


# ---------------------------------------------------------------- reporting

def mib(v: Optional[float]) -> str:
    return "-" if v is None else f"{v / MiB:,.1f}"


def transfer(r: dict) -> str:
    c = r.get("client")
    if not c:
        return "-"
    text = f"{c['bytes'] / MiB:,.0f} MiB in {c['elapsed_s']:.1f}s"
    if c.get("cut"):
        text += " (cut at time limit)"
    if r["scenario"] == "stalled":
        text += f", then held {c['held_s']:.0f}s unread"
    if r["scenario"] == "upload" and not c.get("cut"):
        text += f", answer {c.get('status')} {c.get('answer')!r}"
    return text


def summarise(results: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["scenario"], r["server"]), []).append(r)
    rows = []
    for (scenario, server), runs in groups.items():
        ok = [r for r in runs if "error" not in r]
        med = lambda k: (statistics.median([r[k] for r in ok if r.get(k) is not None])  # noqa
                         if any(r.get(k) is not None for r in ok) else None)
        rows.append({"scenario": scenario, "server": server, "runs": len(runs),
                     "failed": len(runs) - len(ok), "baseline": med("baseline"),
                     "peak": med("peak"), "growth": med("growth"), "hwm": med("hwm"),
                     "after": med("after"), "server_cpu_s": med("server_cpu_s"),
                     "transfer": transfer(ok[-1]) if ok else "failed"})
    return rows


def print_table(rows: list[dict]) -> None:
    print("\n== server RSS in MiB (median over rounds) ==")
    print(f"{'scenario':<9}{'server':<9}{'baseline':>9}{'peak':>8}{'growth':>8}{'VmHWM':>8}"
          f"{'after':>8}{'CPU s':>7}  transfer")
    for r in rows:
        print(f"{r['scenario']:<9}{r['server']:<9}{mib(r['baseline']):>9}{mib(r['peak']):>8}"
              f"{mib(r['growth']):>8}{mib(r['hwm']):>8}{mib(r['after']):>8}"
              f"{fmt(r['server_cpu_s']):>7}  {r['transfer']}"
              + (f"  ({r['failed']} failed)" if r["failed"] else ""))


def markdown(rows: list[dict], meta: dict) -> str:
    out = [f"Machine: {meta['machine']}. VmRSS of the server process sampled every "
           f"{meta['interval'] * 1000:.0f} ms; baseline = idle after one small warm-up "
           f"request; peak over the scenario plus {meta['settle']:.0f} s; VmHWM = the kernel's "
           f"peak since the baseline; after = last sample. Transfers stop at "
           f"{meta['time_limit']:.0f} s. {meta['rounds']} round(s), medians shown.", "",
           "| scenario | server | baseline MiB | peak MiB | growth MiB | VmHWM MiB "
           "| after MiB | server CPU s | transfer |",
           "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        out.append(f"| {r['scenario']} | {r['server']} | {mib(r['baseline'])} | {mib(r['peak'])} "
                   f"| {mib(r['growth'])} | {mib(r['hwm'])} | {mib(r['after'])} "
                   f"| {fmt(r['server_cpu_s'])} | {r['transfer']} |")
    out += ["", "Commands (ports vary per run):", "", "```", *meta["commands"], "```"]
    return "\n".join(out)


# ---------------------------------------------------------------- main

def parse_args() -> argparse.Namespace:
    p = parser(__doc__)
    p.add_argument("--servers", type=csv, default=list(ALL_SERVERS))
    p.add_argument("--scenarios", type=csv, default=list(SCENARIOS),
                   help=f"comma list of {','.join(SCENARIOS)} (default all)")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--time-limit", type=float, default=20.0,
                   help="seconds after which an upload or a slow read is cut short")
    p.add_argument("--hold", type=float, default=5.0,
                   help="stalled: seconds the unread socket stays open")
    p.add_argument("--settle", type=float, default=1.0,
                   help="seconds sampled after the client finished")
    p.add_argument("--interval", type=float, default=0.05, help="sampling period, s")
    p.add_argument("--narwhal-bin", type=Path, default=REPO / "build" / "narwhal")
    p.add_argument("--narwhal-args", default="", help="extra narwhal flags, one string")
    p.add_argument("--json", type=Path, help="write raw per-run results here")
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args()
    check_names(p, "server", args.servers, ALL_SERVERS)
    check_names(p, "scenario", args.scenarios, SCENARIOS)
    if args.rounds < 1 or args.time_limit <= 0 or args.hold < 0 or args.interval <= 0:
        p.error("bad --rounds/--time-limit/--hold/--interval")
    return args


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    logdir = Path(tempfile.mkdtemp(prefix="narwhal-rss-"))
    host = machine()
    print(f"# {host}; server logs in {logdir}", flush=True)
    results: list[dict] = []
    try:
        for rnd in range(1, args.rounds + 1):
            for scenario in args.scenarios:
                shift = (rnd - 1) % len(args.servers)
                for name in args.servers[shift:] + args.servers[:shift]:
                    r = run_one(name, scenario, args, logdir, rnd)
                    results.append(r)
                    print(f"  r{rnd} {scenario:<8}{name:<8} baseline {mib(r.get('baseline'))} "
                          f"peak {mib(r.get('peak'))} growth {mib(r.get('growth'))} "
                          f"VmHWM {mib(r.get('hwm'))} after {mib(r.get('after'))} MiB; "
                          f"{r.get('warm_up', '')}; {transfer(r)}"
                          + (f"\n  ERROR {r['error']}" if "error" in r else ""), flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted (servers are stopped in run_one's finally)", flush=True)
        return 130
    rows = summarise(results)
    print_table(rows)
    commands = list(dict.fromkeys(without_port(r["command"]) for r in results))
    meta = {"machine": host, "rounds": args.rounds, "time_limit": args.time_limit,
            "hold": args.hold, "settle": args.settle, "interval": args.interval,
            "commands": commands}
    problems = [f"{r['scenario']}/{r['server']} r{r['round']}: {r['error']}"
                for r in results if "error" in r]
    print_commands(commands, problems)
    write_json(args.json, {"meta": meta, "summary": rows, "runs": results}, default=str)
    if args.markdown:
        print("\n" + markdown(rows, meta))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
