#!/usr/bin/python3
"""Instructions per request, counted with callgrind: a CPU-cost measure that a busy
machine does not disturb.

wrk's CPU/request moves with whatever else runs on the machine; the number of
instructions a server executes for a request does not. For each (server, scenario)
the server is started under `valgrind --tool=callgrind` twice: once answering N1
requests, once N2, each over the same keep-alive connection(s) from a small client
here, then stopped (SIGTERM). Start-up, imports, the first request's one-time work
and shutdown are the same in both runs, so

    instructions/request = (Ir(N2) - Ir(N1) - idle_rate * (T2 - T1)) / (N2 - N1)

over every thread and process of the server, where T is the time spent sending and
idle_rate the server's time-driven work per second (timers, heartbeats), priced by
one more run that idles --idle seconds after its N1 requests. Callgrind counts user
space only: the kernel's share of a request is not in Ir; `sysCount`, system calls
per request, is reported beside it. Each pair is repeated (--repeat) and the spread
is printed. How it works and how stable it is: loadtests/README.md.

    /usr/bin/python3 loadtests/instructions.py                      # narwhal (build/narwhal), plaintext
    /usr/bin/python3 loadtests/instructions.py --servers narwhal,granian --scenarios plaintext,json
    /usr/bin/python3 loadtests/instructions.py --compare OLD/narwhal build/narwhal --scenarios all
    /usr/bin/python3 loadtests/instructions.py --servers narwhal,granian --profile   # where it goes
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import callgrind
from harness import (HOST, REPO, Server, check_names, csv, fmt, free_port, machine, on_sigterm,
                     parser, problem, write_json)
from scenarios import SCENARIOS, Scenario
from servers import (DEFAULT_VENV, Setup, describe, ensure_beast, environments, narwhal_python,
                     parse_variant, ready_log, server_argv, skip_reason, uses_venv)

SERVERS = ("narwhal", "uvicorn", "uvicorn-pypi", "granian", "beast")
START_TIMEOUT = 600.0  # Python start-up under valgrind takes tens of seconds on a busy box
STOP_TIMEOUT = 300.0
REPLY_TIMEOUT = 120.0
COUNTED = ("Ir", "sysCount")  # callgrind events reported (sysTime is a time, not a count)


# ---------------------------------------------------------------- client

class Client:
    """Keep-alive HTTP/1.1 connections sending one scenario's request, one in flight on each."""

    def __init__(self, port: int, scenario: Scenario, connections: int):
        self.request = scenario.request(HOST, port)
        self.scenario = scenario
        self.socks = [socket.create_connection((HOST, port), timeout=REPLY_TIMEOUT)
                      for _ in range(connections)]
        for s in self.socks:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = [b""] * connections

    def run(self, requests: int) -> None:
        """Sends `requests` requests: one on each connection, then every answer, repeated.
        Every answer is checked (status and body), so a wrong answer cannot pass as cheap."""
        n = len(self.socks)
        if requests % n:
            raise ValueError(f"{requests} requests do not split over {n} connections")
        for _ in range(requests // n):
            for s in self.socks:
                s.sendall(self.request)
            for i in range(n):
                status, body = self.read_response(i)
                if bad := self.scenario.check(status, body):
                    raise RuntimeError(f"wrong answer: {bad}")

    def read_response(self, i: int) -> tuple[int, bytes]:
        buf, sock = self.pending[i], self.socks[i]
        while b"\r\n\r\n" not in buf:
            buf += self.recv(sock)
        head, _, buf = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"answer without Content-Length: {head[:200]!r}")
        while len(buf) < length:
            buf += self.recv(sock)
        self.pending[i] = buf[length:]
        return status, buf[:length]

    @staticmethod
    def recv(sock: socket.socket) -> bytes:
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("server closed the connection")
        return data

    def close(self) -> None:
        for s in self.socks:
            s.close()


# ---------------------------------------------------------------- one run

@dataclass
class Target:
    """A server to measure: its label in reports and how to start it."""
    label: str
    server: str  # narwhal, uvicorn, uvicorn-pypi, granian
    setup: Setup


def valgrind_argv(out_dir: Path, profile: bool) -> list[str]:
    argv = ["valgrind", "--tool=callgrind", "--trace-children=yes",
            f"--callgrind-out-file={out_dir}/callgrind.out.%p", "--collect-systime=yes"]
    if profile:
        argv += ["--dump-instr=yes"]
    return argv


def measure(target: Target, scenario: Scenario, requests: int, connections: int,
            out_dir: Path, profile: bool, idle: float = 0.0) -> dict:
    """Starts the server under callgrind, sends `requests`, waits `idle` seconds with the
    connections open, stops it; the summed counts."""
    out_dir.mkdir(parents=True)
    port = free_port()
    argv = valgrind_argv(out_dir, profile) + server_argv(target.server, scenario, port,
                                                         target.setup)
    srv = Server(target.label, argv, port, out_dir / "server.log",
                 ready=ready_log(target.server))
    started = time.monotonic()
    try:
        srv.start(timeout=START_TIMEOUT)
        client = Client(port, scenario, connections)
        t0 = time.monotonic()
        try:
            client.run(requests)
            sent_s = time.monotonic() - t0
            if idle:
                time.sleep(idle)  # measures the server's time-driven work: see idle_rate()
        finally:
            client.close()
    finally:
        srv.stop(timeout=STOP_TIMEOUT)
    assert srv.proc is not None
    files = sorted(out_dir.glob("callgrind.out.*"))
    if not files:
        raise RuntimeError(f"no callgrind output (server rc={srv.proc.returncode})\n"
                           f"{srv.log_tail()}")
    prof = callgrind.read_all(files, functions=profile)
    return {"requests": requests, "totals": prof.totals, "files": [str(f) for f in files],
            "seconds": time.monotonic() - started, "send_seconds": sent_s, "idle_seconds": idle,
            "command": shlex.join(argv), "profile": prof if profile else None}


def idle_rate(plain: dict, idled: dict) -> dict[str, float]:
    """Counts per second of the server's time-driven work (timers, heartbeats, the
    watchdog): two runs with the same requests, one followed by an idle wait."""
    dt = idle_span(plain, idled)
    # a server without timers measures a little below zero now and then: no work is no work
    return {ev: max(0.0, (idled["totals"].get(ev, 0) - plain["totals"].get(ev, 0)) / dt)
            for ev in COUNTED}


def idle_span(plain: dict, idled: dict) -> float:
    """How much longer the idled run was up: the wait, and any difference in sending."""
    return idled["idle_seconds"] + idled["send_seconds"] - plain["send_seconds"]


def per_request(small: dict, big: dict, rate: Optional[dict[str, float]] = None
                ) -> dict[str, float]:
    """(big - small) / (N2 - N1), less the time-driven work of the longer sending time.

    Under valgrind a request takes milliseconds, so the timers that cost a server
    nothing per request at full speed add up between requests, and more so when the
    machine is busy and valgrind slower: subtracting rate x (T2 - T1) keeps the
    number a property of the server rather than of the machine's load."""
    dn = big["requests"] - small["requests"]
    dt = big["send_seconds"] - small["send_seconds"]
    return {ev: (big["totals"].get(ev, 0) - small["totals"].get(ev, 0)
                 - (rate.get(ev, 0.0) * dt if rate else 0.0)) / dn
            for ev in COUNTED}


def profile_delta(small: dict, big: dict, idle: Optional[tuple[dict, dict]]) -> callgrind.Profile:
    """Per-request cost of each function (self, and of its calls), as per_request()
    computes the totals."""
    dn = big["requests"] - small["requests"]
    dt = big["send_seconds"] - small["send_seconds"]
    out = callgrind.Profile(events=list(COUNTED))
    for table in ("functions", "callees", "arcs"):
        counted = COUNTED + ("calls",) if table == "arcs" else COUNTED
        b_all, s_all = getattr(big["profile"], table), getattr(small["profile"], table)
        i_plain, i_idled = ((getattr(r["profile"], table) for r in idle) if idle else ({}, {}))
        span = idle_span(*idle) if idle else 1.0
        result = getattr(out, table)
        for key in set(b_all) | set(s_all):
            b, s, p, i = (t.get(key, {}) for t in (b_all, s_all, i_plain, i_idled))
            result[key] = {ev: (b.get(ev, 0) - s.get(ev, 0)
                                - (i.get(ev, 0) - p.get(ev, 0)) / span * dt) / dn
                           for ev in counted}
    return out


@dataclass
class Series:
    """The runs of one target in one scenario."""
    pairs: list[tuple[dict, dict]] = field(default_factory=list)
    idle: Optional[tuple[dict, dict]] = None  # (N1 run, N1 run + idle wait)
    error: Optional[str] = None

    @property
    def rate(self) -> Optional[dict[str, float]]:
        return idle_rate(*self.idle) if self.idle else None

    def row(self, scenario: str, t: Target) -> dict:
        if not self.pairs:
            return {"scenario": scenario, "label": t.label, "error": self.error or "no result"}
        per = [per_request(s, b, self.rate) for s, b in self.pairs]
        raw = [per_request(s, b) for s, b in self.pairs]
        return {"scenario": scenario, "label": t.label, "server": t.server,
                "ir": statistics.median(p["Ir"] for p in per), "ir_runs": [p["Ir"] for p in per],
                "syscalls": statistics.median(p["sysCount"] for p in per),
                "syscalls_runs": [p["sysCount"] for p in per],
                "ir_raw_runs": [p["Ir"] for p in raw], "idle_rate_per_s": self.rate,
                "command": self.pairs[0][0]["command"]}


def run_pair(t: Target, scenario: Scenario, rep: int, args: argparse.Namespace, work: Path,
             ser: Series, problems: list[str]) -> None:
    """One (N1, N2) pair; the first pair also gets the idle run that prices the timers."""
    if ser.error:
        return
    n1, n2 = args.requests
    base = work / scenario.name / t.label.replace("/", "_").replace(" ", "_") / f"pair{rep}"
    try:
        small = measure(t, scenario, n1, args.connections, base / f"n{n1}", args.profile)
        big = measure(t, scenario, n2, args.connections, base / f"n{n2}", args.profile)
        if ser.idle is None and args.idle > 0:
            idled = measure(t, scenario, n1, args.connections, base / f"n{n1}-idle",
                            args.profile, idle=args.idle)
            ser.idle = (small, idled)
    except (OSError, RuntimeError, ValueError) as e:
        ser.error = str(e).splitlines()[0]
        problem(problems, f"{scenario.name}/{t.label}: {e}")
        return
    ser.pairs.append((small, big))
    pr, raw = per_request(small, big, ser.rate), per_request(small, big)
    rate = ser.rate or {}
    print(f"  {scenario.name} {t.label} pair {rep + 1}: {fmt(pr['Ir'], 0)} Ir/request, "
          f"{fmt(pr['sysCount'], 2)} syscalls/request (uncorrected {fmt(raw['Ir'], 0)}; "
          f"idle {fmt(rate.get('Ir'), 0)} Ir/s; sending {small['send_seconds']:.1f}s + "
          f"{big['send_seconds']:.1f}s)", flush=True)


# ---------------------------------------------------------------- reporting

def spread(values: list[float]) -> str:
    if len(values) < 2:
        return ""
    mid = statistics.median(values)
    return f"min {fmt(min(values), 0)}, max {fmt(max(values), 0)} ({(max(values) - min(values)) / mid * 100:.2f}% of median)"


def print_profile(label: str, delta: callgrind.Profile, top: int,
                  inclusive: Optional[str] = None, callers: Optional[str] = None) -> None:
    total = sum(c.get("Ir", 0) for c in delta.functions.values())
    print(f"\n-- {label}: where the instructions of one request go "
          f"({fmt(total, 0)} Ir/request, self cost) --")
    objs = sorted(delta.by_object().items(), key=lambda kv: -kv[1])
    print("  by object:")
    for obj, ir in objs:
        if abs(ir) < total * 0.005:
            continue
        print(f"  {ir:>12,.0f}  {ir / total * 100:5.1f}%  {callgrind.short_object(obj)}")
    print(f"  top {top} functions:")
    fns = sorted(delta.functions.items(), key=lambda kv: -kv[1].get("Ir", 0))[:top]
    for (obj, fn), costs in fns:
        ir = costs.get("Ir", 0)
        print(f"  {ir:>12,.0f}  {ir / total * 100:5.1f}%  {fn[:90]}  "
              f"[{callgrind.short_object(obj)}]")
    if inclusive:
        pattern = re.compile(inclusive)
        found = [(delta.inclusive(key), key) for key in delta.functions
                 if pattern.search(key[1])]
        print(f"  inclusive cost (self + calls) of functions matching {inclusive!r}:")
        for ir, (obj, fn) in sorted(found, reverse=True)[:top]:
            print(f"  {ir:>12,.0f}  {ir / total * 100:5.1f}%  {fn[:90]}  "
                  f"[{callgrind.short_object(obj)}]")
    if callers:
        pattern = re.compile(callers)
        sites = [(costs.get("Ir", 0), costs.get("calls", 0), caller, callee)
                 for ((_, caller), callee), costs in delta.arcs.items()
                 if pattern.search(callee) and abs(costs.get("calls", 0)) >= 0.005]
        print(f"  call sites of functions matching {callers!r} (Ir per request of the calls "
              f"from there, calls per request, Ir per call):")
        for ir, n, caller, callee in sorted(sites, reverse=True)[:top]:
            print(f"  {ir:>12,.0f}  {n:6.2f} calls  {ir / n if n else 0:8,.0f} Ir/call  "
                  f"{caller[:120]} -> {callee[:40]}")


def report(rows: list[dict], compare: bool) -> None:
    print("\n== instructions per request (callgrind Ir, user space; "
          "(Ir(N2) - Ir(N1)) / (N2 - N1)) ==")
    print(f"{'scenario':<10} {'server':<28}{'Ir/request':>14}{'syscalls/req':>14}  runs")
    for r in rows:
        if "skipped" in r:
            print(f"{r['scenario']:<10} {r['label']:<28}  skipped: {r['skipped']}")
            continue
        if "error" in r:
            print(f"{r['scenario']:<10} {r['label']:<28}  failed: {r['error']}")
            continue
        print(f"{r['scenario']:<10} {r['label']:<28}{fmt(r['ir'], 0):>14}"
              f"{fmt(r['syscalls'], 2):>14}  {spread(r['ir_runs'])}")
    if compare:
        labels = list(dict.fromkeys(r["label"] for r in rows))
        if len(labels) == 2:
            print(f"\n{labels[1]} against {labels[0]}:")
            for sc in dict.fromkeys(r["scenario"] for r in rows):
                a = next((r for r in rows if r["scenario"] == sc and r["label"] == labels[0]
                          and "ir" in r), None)
                b = next((r for r in rows if r["scenario"] == sc and r["label"] == labels[1]
                          and "ir" in r), None)
                if a and b:
                    print(f"  {sc:<10} {fmt(b['ir'] - a['ir'], 0):>10} Ir/request "
                          f"({(b['ir'] / a['ir'] - 1) * 100:+.2f}%), syscalls/request "
                          f"{fmt(a['syscalls'], 2)} -> {fmt(b['syscalls'], 2)}")


# ---------------------------------------------------------------- main

def parse_args() -> argparse.Namespace:
    p = parser(__doc__)
    p.add_argument("--servers", type=csv, default=["narwhal"],
                   help=f"comma list of {','.join(SERVERS)} (default narwhal), each "
                        f"optionally with -wN / -iM as in compare.py (narwhal-w2: a master "
                        f"and 2 workers; the requests reach one of them)")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("BIN_A", "BIN_B"),
                   help="measure two narwhal binaries (before/after) instead of --servers")
    p.add_argument("--scenarios", type=csv, default=["plaintext"],
                   help=f"comma list of {','.join(SCENARIOS)}, or all (default plaintext)")
    p.add_argument("--requests", type=lambda s: [int(x) for x in csv(s)], default=[1000, 3000],
                   metavar="N1,N2", help="requests in the short and the long run (default 1000,3000)")
    p.add_argument("--repeat", type=int, default=2, help="(N1, N2) pairs per server and scenario")
    p.add_argument("--idle", type=float, default=10.0,
                   help="seconds of the idle run that prices time-driven work (0: no correction)")
    p.add_argument("--connections", type=int, default=1,
                   help="keep-alive connections, one request in flight on each (default 1: "
                        "the most repeatable; more makes the server batch, as under load)")
    p.add_argument("--narwhal-bin", type=Path, default=REPO / "build" / "narwhal")
    p.add_argument("--narwhal-args", default="", help="extra narwhal arguments (one string)")
    p.add_argument("--granian-args", default="",
                   help="extra granian flags (one string); a repeated flag overrides ours")
    p.add_argument("--venv", type=Path, default=DEFAULT_VENV,
                   help="virtualenv with the pinned PyPI packages (make venv)")
    p.add_argument("--beast-bin", type=Path, default=REPO / "build" / "bare_beast" / "bare_beast")
    p.add_argument("--profile", action="store_true",
                   help="also print where the instructions of one request go (per object and "
                        "function, from the last pair; callgrind --dump-instr=yes)")
    p.add_argument("--top", type=int, default=25, help="functions shown by --profile")
    p.add_argument("--inclusive", metavar="REGEX",
                   help="with --profile: also the inclusive cost of functions whose name "
                        "matches, e.g. 'Bridge::|RequestStep'")
    p.add_argument("--callers", metavar="REGEX",
                   help="with --profile: also each call site of functions whose name matches, "
                        "with its calls per request and cost per call, e.g. 'operator new|^malloc'")
    p.add_argument("--keep", type=Path, help="keep the callgrind files under this directory")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args()
    if args.scenarios == ["all"]:
        args.scenarios = list(SCENARIOS)
    check_names(p, "scenario", args.scenarios, SCENARIOS)
    for name in args.servers:
        try:
            parse_variant(name)
        except ValueError as e:
            p.error(str(e))
    if len(args.requests) != 2 or not 0 < args.requests[0] < args.requests[1]:
        p.error("--requests takes N1,N2 with 0 < N1 < N2")
    if args.connections < 1 or any(n % args.connections for n in args.requests):
        p.error("--connections must be >= 1 and divide N1 and N2")
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    return args


def targets(args: argparse.Namespace) -> list[Target]:
    if args.compare:
        return [Target(f"narwhal {path}", "narwhal",
                       Setup(path, args.narwhal_args, venv=args.venv)) for path in args.compare]
    return [Target(s, s, Setup(args.narwhal_bin, args.narwhal_args, args.beast_bin, args.venv,
                               args.granian_args))
            for s in args.servers]


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    # The same str hashes in every run: dict and set layouts (and so the work) repeat.
    os.environ["PYTHONHASHSEED"] = "0"
    todo = targets(args)
    if any(t.server == "beast" for t in todo) and "plaintext" in args.scenarios:
        ensure_beast(args.beast_bin)
    need_venv = any(uses_venv(t.server, SCENARIOS[sc]) for t in todo for sc in args.scenarios)
    if need_venv and not (args.venv / "bin" / "python").exists():
        print(f"{args.venv} is not a virtualenv (no bin/python): create it with `make venv` "
              f"or pass --venv PATH", file=sys.stderr)
        return 2
    envs = environments(todo[0].setup, need_venv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="narwhal-instr-"))
    print(f"# {machine()}; callgrind files in {work}", flush=True)
    for line in describe(envs):
        print(f"# {line}", flush=True)
    n1, n2 = args.requests
    rows: list[dict] = []
    problems: list[str] = []
    try:
        for name in args.scenarios:
            scenario = SCENARIOS[name]
            live = []
            for t in todo:
                embedded = (narwhal_python(t.setup.narwhal_bin)
                            if (parse_variant(t.server).interpreters or 1) > 1 else None)
                if reason := skip_reason(t.server, scenario, envs, embedded):
                    rows.append({"scenario": name, "label": t.label, "skipped": reason})
                else:
                    live.append(t)
            series = {t.label: Series() for t in live}
            for rep in range(args.repeat):
                for t in live:  # interleaved: a drift on the machine hits every target alike
                    run_pair(t, scenario, rep, args, work, series[t.label], problems)
            for t in live:
                rows.append(series[t.label].row(name, t))
                if args.profile and series[t.label].pairs:
                    ser = series[t.label]
                    print_profile(f"{name} / {t.label}",
                                  profile_delta(*ser.pairs[-1], ser.idle), args.top,
                                  args.inclusive, args.callers)
    except KeyboardInterrupt:
        print("\ninterrupted", flush=True)
        return 130

    report(rows, bool(args.compare))
    print(f"\nN1={n1}, N2={n2}, {args.connections} connection(s), {args.repeat} pair(s) each, "
          f"idle run {args.idle:g}s; PYTHONHASHSEED=0")
    if problems:
        print("\nProblems:")
        for pr in problems:
            print(f"  {pr}")
    write_json(args.json, {"machine": machine(), "requests": args.requests,
                           "connections": args.connections, "repeat": args.repeat,
                           "idle_seconds": args.idle,
                           "versions": envs, "results": rows})
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
