#!/usr/bin/python3
"""Side-by-side WebSocket comparison of narwhal, uvicorn (websockets 10.4) and granian.

Load comes from ws_bench (loadtests/ws_bench/, C++ Boost.Beast, one thread; built on
demand). Scenarios:

  echo       N sockets each send a 64-byte text message and wait for its echo, repeatedly
             (app: loadtests/apps/ws_echo.py); N = 1, 100, 1000
  broadcast  one publisher sends a message, the app sends it to N subscribers; the next
             message goes out when every subscriber got the previous one (--window W: when
             fewer than W are still on their way) (app: loadtests/apps/ws_broadcast.py,
             a Python loop over the sockets); N = 100, 1000
  pubsub     the same load, but narwhal runs loadtests/apps/ws_broadcast_pubsub.py (one
             publish to a topic every subscriber joined: the server fans it out without
             Python per subscriber) while uvicorn and granian run ws_broadcast.py; N = 1000

Each scenario starts every server once (own free port on 127.0.0.1; readiness by
polling connect; stopped by PID in finally), checks it with a tiny ws_bench run, then
runs ws_bench interleaved: round 1 = each server once per socket count, round 2 = the
same again with the server order rotated, ... Reported numbers are medians over rounds.
Server CPU (utime+stime of the process tree from /proc) is read when ws_bench prints
"measure start" and "measure end" (after its connect phase and warm-up), so CPU per
message covers exactly the measured window.

Run from anywhere:  /usr/bin/python3 loadtests/ws_compare.py --help
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

from harness import (HOST, PYTHON, REPO, Server, WsServer, check_alive, check_names,
                     cpu_delta_seconds, csv, ensure_nofile, fmt, free_port, machine, median,
                     on_sigterm, parser, print_commands, problem, ratio, rel, tree_cpu, try_start,
                     without_port, write_json)
from servers import DEFAULT_VENV, granian_flags, ready_log, unresolved

ALL_SERVERS = ("narwhal", "uvicorn", "granian")
DEFAULT_SERVERS = ["narwhal", "uvicorn"]  # granian needs the virtualenv: ask for it
VENV_SERVERS = ("granian",)
# scenario -> (ws_bench mode, app module, {server: its own app module})
SCENARIOS = {"echo": ("echo", "ws_echo", {}),
             "broadcast": ("broadcast", "ws_broadcast", {}),
             "pubsub": ("broadcast", "ws_broadcast", {"narwhal": "ws_broadcast_pubsub"})}
DEFAULT_SOCKETS = {"echo": [1, 100, 1000], "broadcast": [100, 1000], "pubsub": [1000]}
DEFAULT_SCENARIOS = ["echo", "broadcast"]  # pubsub needs a narwhal with the extension
# The broadcast publisher connects here: ws_broadcast_pubsub.py does not subscribe it (so it
# gets no copy of its own messages); ws_broadcast.py ignores the query (it skips the sender).
PUBLISHER_PATH = "/?role=publisher"


def app_module(scenario: str, server: str) -> str:
    _, module, own = SCENARIOS[scenario]
    return own.get(server, module)


# ---------------------------------------------------------------- servers

def server_argv(name: str, module: str, port: int, args: argparse.Namespace) -> list[str]:
    if name == "narwhal":
        return [rel(args.narwhal_bin), f"{module}:app", "--app-dir", "loadtests/apps",
                "--no-access-log", "--no-ws-per-message-deflate", "--host", HOST,
                "--port", str(port), *shlex.split(args.narwhal_args)]
    if name == "uvicorn":
        return [PYTHON, "-m", "uvicorn", f"{module}:app", "--app-dir", "loadtests/apps",
                "--host", HOST, "--port", str(port), "--loop", "uvloop", "--http", "httptools",
                "--ws", "websockets", "--no-access-log", "--ws-per-message-deflate", "False",
                *shlex.split(args.uvicorn_args)]
    if name == "granian":
        # the HTTP comparison's single-worker settings (loadtests/README.md), with WebSockets
        # on; granian never negotiates permessage-deflate
        flags = ["--ws" if f == "--no-ws" else f for f in granian_flags(1)]
        return [unresolved(args.venv / "bin" / "python"), "-m", "granian", *flags,
                "--working-dir", "loadtests/apps", "--host", HOST, "--port", str(port),
                *shlex.split(args.granian_args), f"{module}:app"]
    raise ValueError(name)


def ensure_ws_bench(binary: Path) -> None:
    if binary.exists():
        return
    build = rel(binary.parent)
    for cmd in (["cmake", "-S", "loadtests/ws_bench", "-B", build, "-DCMAKE_BUILD_TYPE=Release"],
                ["cmake", "--build", build]):
        print(f"$ {shlex.join(cmd)}", flush=True)
        subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL, timeout=600)


# ---------------------------------------------------------------- ws_bench

def bench_argv(args: argparse.Namespace, mode: str, port: int, sockets: int, seconds: float,
               warmup: float, window: Optional[int] = None) -> list[str]:
    argv = [rel(args.ws_bench), mode, "--host", HOST, "--port", str(port), "--path", "/",
            "--sockets", str(sockets), "--seconds", f"{seconds:g}", "--warmup", f"{warmup:g}",
            "--size", str(args.size)]
    if mode == "broadcast":
        argv += ["--publisher-path", PUBLISHER_PATH]
        if args.interval_ms:
            argv += ["--interval-ms", f"{args.interval_ms:g}"]
        elif window and window > 1:
            argv += ["--window", str(window)]
    return argv


def run_bench(server: Server, argv: list[str], seconds: float, warmup: float,
              verbose: bool = True) -> dict:
    """Runs ws_bench; samples the server's and ws_bench's CPU at its measure markers."""
    if verbose:
        print(f"$ {shlex.join(argv)}", flush=True)
    assert server.proc is not None
    # connect (30 s) + warm-up + broadcast sync (10 s) + run + close (5 s) + slack
    limit = 30 + warmup + 10 + seconds + 5 + 15
    proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    killer = threading.Timer(limit, proc.kill)  # by PID: only our own ws_bench
    killer.start()
    marks: dict[str, tuple[float, dict, dict]] = {}
    other: list[str] = []
    try:
        assert proc.stderr is not None and proc.stdout is not None
        for line in proc.stderr:  # the JSON comes on stdout after stderr is done
            line = line.strip()
            if line in ("ws_bench: measure start", "ws_bench: measure end"):
                marks[line.rsplit(" ", 1)[1]] = (time.monotonic(), tree_cpu(server.proc.pid),
                                                 tree_cpu(proc.pid),
                                                 # the system-call share of the server's
                                                 # CPU (a fan-out's writes are mostly kernel)
                                                 tree_cpu(server.proc.pid, kernel_only=True))
            elif line:
                other.append(line)
        out = proc.stdout.read()
        rc = proc.wait()
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    res: dict = {"command": shlex.join(argv), "rc": rc}
    try:
        res.update(json.loads(out.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        res["error"] = f"ws_bench rc={rc}, no JSON: {(out + ' '.join(other)).strip()[-300:]}"
        return res
    if "start" in marks and "end" in marks:
        (t0, s0, c0, k0), (t1, s1, c1, k1) = marks["start"], marks["end"]
        cpu = cpu_delta_seconds(s0, s1)
        wall = t1 - t0
        count = res.get("round_trips") if res["mode"] == "echo" else res.get("deliveries")
        res.update(server_cpu_s=cpu, client_cpu_s=cpu_delta_seconds(c0, c1),
                   server_sys_pct=cpu_delta_seconds(k0, k1) / cpu * 100 if cpu > 0 else None,
                   cpu_us_per_msg=cpu / count * 1e6 if count else None,
                   # the rate one fully used core would sustain: the projection for a machine
                   # where the client does not take the server's CPU
                   per_core=count / cpu if cpu > 0 and count else None,
                   server_cpu_pct=cpu / wall * 100 if wall > 0 else None,
                   client_cpu_pct=cpu_delta_seconds(c0, c1) / wall * 100 if wall > 0 else None)
    res["rate"] = res.get("rps") if res["mode"] == "echo" else res.get("deliveries_per_s")
    if rc != 0:
        res["error"] = f"ws_bench rc={rc}: {' '.join(other)[-300:] or res.get('first_error')}"
    elif not res.get("measured"):
        res["error"] = f"nothing measured: {res.get('first_error')}"
    return res


def check_server(server: Server, args: argparse.Namespace, mode: str) -> Optional[str]:
    """A tiny ws_bench run before measuring: 2 sockets, 0.3 s; returns a problem or None."""
    argv = bench_argv(args, mode, server.port, 2, 0.3, 0.1)
    r = run_bench(server, argv, 0.3, 0.1, verbose=False)
    if "error" in r:
        return r["error"]
    if r.get("errors") or not r.get("rate") or r.get("connected") != 2:
        return f"check run failed: {r.get('errors')} errors ({r.get('first_error')}), " \
               f"connected {r.get('connected')}/2, rate {r.get('rate')}"
    return wrong_delivery(r)


def wrong_delivery(r: dict) -> Optional[str]:
    """A broadcast app must not send the publisher its own messages (not counted, but the
    server's work for them would be in CPU per delivery)."""
    if r.get("publisher_received"):
        return f"the publisher received {r['publisher_received']} messages (the app echoes " \
               f"to the sender)"
    return None


# ---------------------------------------------------------------- reporting

def summarise(results: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["scenario"], r["sockets"], r.get("window_label"), r["server"]),
                          []).append(r)
    rows = []
    for (scenario, sockets, window, server), runs in groups.items():
        rows.append({
            "scenario": scenario, "sockets": sockets, "window": window, "server": server,
            "runs": len(runs), "app": runs[0].get("app"),
            "rate": median([r.get("rate") for r in runs]),
            "publishes_per_s": median([r.get("publishes_per_s") for r in runs]),
            "fanout_p50_us": median([r.get("fanout_p50_us") for r in runs]),
            "p50_us": median([r.get("p50_us") for r in runs]),
            "p99_us": median([r.get("p99_us") for r in runs]),
            "fanout_p99_us": median([r.get("fanout_p99_us") for r in runs]),
            "cpu_us_per_msg": median([r.get("cpu_us_per_msg") for r in runs]),
            "per_core": median([r.get("per_core") for r in runs]),
            "server_sys_pct": median([r.get("server_sys_pct") for r in runs]),
            "server_cpu_pct": median([r.get("server_cpu_pct") for r in runs]),
            "client_cpu_pct": median([r.get("client_cpu_pct") for r in runs]),
            "errors": sum(r.get("errors") or 0 for r in runs),
            "fanout_timeouts": sum(r.get("fanout_timeouts") or 0 for r in runs),
            "connected": min((r.get("connected") or 0) for r in runs),
            "failed_runs": sum(1 for r in runs if "error" in r),
        })
    for row in rows:
        base = next((b for b in rows if b["server"] == "uvicorn"
                     and b["scenario"] == row["scenario"] and b["sockets"] == row["sockets"]
                     and b["window"] == row["window"]), None)
        row["rate_ratio"] = ratio(row["rate"], base["rate"]) if base else None
        row["cpu_ratio"] = ratio(row["cpu_us_per_msg"], base["cpu_us_per_msg"]) if base else None
    return rows


def print_tables(rows: list[dict], rounds: int) -> None:
    keys = list(dict.fromkeys((r["scenario"], r["sockets"], r["window"]) for r in rows))
    for scenario, sockets, window in keys:
        group = [r for r in rows if (r["scenario"], r["sockets"], r["window"])
                 == (scenario, sockets, window)]
        unit = "round trips/s" if scenario == "echo" else "deliveries/s"
        how = f", {window}" if window else ""
        print(f"\n== {scenario}, {sockets} sockets{how} (median of {rounds} rounds) ==")
        print(f"{'server':<9}{unit:>15}{'p50 us':>10}{'p99 us':>10}{'CPU us/msg':>12}"
              f"{'per core':>10}{'srv CPU%':>10}{'sys%':>6}{'cli CPU%':>10}{'errors':>8}  app")
        for r in group:
            note = f"  ({r['failed_runs']} failed runs)" if r["failed_runs"] else ""
            if r["fanout_timeouts"]:
                note += f"  ({r['fanout_timeouts']} fan-out timeouts)"
            print(f"{r['server']:<9}{fmt(r['rate'], 0):>15}{fmt(r['p50_us'], 0):>10}"
                  f"{fmt(r['p99_us'], 0):>10}{fmt(r['cpu_us_per_msg']):>12}"
                  f"{fmt(r['per_core'], 0):>10}{fmt(r['server_cpu_pct'], 0):>10}"
                  f"{fmt(r['server_sys_pct'], 0):>6}{fmt(r['client_cpu_pct'], 0):>10}"
                  f"{r['errors']:>8}  {r['app']}{note}")
        for r in group:
            if r["server"] != "uvicorn" and (r["rate_ratio"] or r["cpu_ratio"]):
                print(f"{r['server']}/uvicorn: {unit} x{fmt(r['rate_ratio'], 2)}, "
                      f"CPU/msg x{fmt(r['cpu_ratio'], 2)}")


def markdown(rows: list[dict], meta: dict) -> str:
    out = [f"Machine: {meta['machine']}. ws_bench (one thread) runs on the same cores as the "
           f"server. {meta['rounds']} interleaved round(s) of {meta['duration']:g} s per run "
           f"after {meta['warmup']:g} s of warm-up, medians shown; ratios are against uvicorn. "
           f"echo: round trips/s and round-trip latency; broadcast: messages delivered to "
           f"subscribers per second and delivery latency (publish to receipt). CPU µs/msg = "
           f"server CPU / round trips (echo) or / deliveries (broadcast). {meta['size']}-byte "
           f"text messages. load: closed loop = the next message when every subscriber got "
           f"the previous one; window W = at most W messages on their way. per core = "
           f"1 / CPU per message: the rate one fully used server core would sustain. kernel = "
           f"the share of the server's CPU spent in the kernel (system calls).", "",
           "| scenario | sockets | load | server (app) | msgs/s | p50 µs | p99 µs "
           "| fan-out p50 µs | CPU µs/msg | per core | server CPU | kernel | client CPU | errors "
           "| msgs/s vs uvicorn | CPU/msg vs uvicorn |",
           "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['scenario']} | {r['sockets']:,} | {r['window'] or '-'} "
                   f"| {r['server']} ({r['app']}) | {fmt(r['rate'], 0)} "
                   f"| {fmt(r['p50_us'], 0)} | {fmt(r['p99_us'], 0)} "
                   f"| {fmt(r['fanout_p50_us'], 0)} "
                   f"| {fmt(r['cpu_us_per_msg'])} | {fmt(r['per_core'], 0)} "
                   f"| {fmt(r['server_cpu_pct'], 0)}% | {fmt(r['server_sys_pct'], 0)}% "
                   f"| {fmt(r['client_cpu_pct'], 0)}% | {r['errors']} "
                   f"| {fmt(r['rate_ratio'], 2)} | {fmt(r['cpu_ratio'], 2)} |")
    out += ["", "Commands (ports vary per run):", "", "```", *meta["commands"], "```"]
    return "\n".join(out)


# ---------------------------------------------------------------- main

def parse_args() -> argparse.Namespace:
    p = parser(__doc__)
    ints = lambda s: [int(x) for x in csv(s)]  # noqa: E731
    p.add_argument("--servers", type=csv, default=list(DEFAULT_SERVERS),
                   help=f"any of {','.join(ALL_SERVERS)}")
    p.add_argument("--scenarios", type=csv, default=list(DEFAULT_SCENARIOS),
                   help=f"any of {','.join(SCENARIOS)}")
    p.add_argument("--echo-sockets", type=ints, default=DEFAULT_SOCKETS["echo"])
    p.add_argument("--broadcast-sockets", type=ints, default=DEFAULT_SOCKETS["broadcast"])
    p.add_argument("--pubsub-sockets", type=ints, default=DEFAULT_SOCKETS["pubsub"])
    p.add_argument("--window", type=ints, default=[1],
                   help="broadcast and pubsub, closed loop: messages in flight, one run per "
                        "value (1 = the next message when every subscriber got the previous)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=1.0,
                   help="seconds of load per run before measuring (after connecting)")
    p.add_argument("--size", type=int, default=64, help="message bytes (broadcast: >= 43)")
    p.add_argument("--interval-ms", type=float, default=0.0,
                   help="broadcast: publish every I ms instead of closed loop")
    p.add_argument("--narwhal-bin", type=Path, default=REPO / "build" / "narwhal")
    p.add_argument("--narwhal-args", default="", help="extra narwhal arguments (one string)")
    p.add_argument("--uvicorn-args", default="", help="extra uvicorn arguments (one string)")
    p.add_argument("--granian-args", default="",
                   help="extra granian arguments (one string; a flag given again wins)")
    p.add_argument("--venv", type=Path, default=DEFAULT_VENV,
                   help="virtualenv with the pinned PyPI packages (granian; make venv)")
    p.add_argument("--ws-bench", type=Path, default=REPO / "build" / "ws_bench" / "ws_bench")
    p.add_argument("--json", type=Path, help="write raw per-run results here")
    p.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    args = p.parse_args()
    check_names(p, "server", args.servers, ALL_SERVERS)
    check_names(p, "scenario", args.scenarios, SCENARIOS)
    if args.rounds < 1 or args.duration <= 0 or args.warmup < 0 or args.size < 1:
        p.error("--rounds >= 1, --duration > 0, --warmup >= 0, --size >= 1")
    if not args.window or min(args.window) < 1:
        p.error("--window values are >= 1")
    if args.interval_ms and args.window != [1]:
        p.error("--interval-ms and --window exclude each other")
    needs = [s for s in args.servers if s in VENV_SERVERS]
    if needs and not (args.venv / "bin" / "python").exists():
        p.error(f"{args.venv} is not a virtualenv (no bin/python), needed by {', '.join(needs)}: "
                f"create it with `make venv`, pass --venv PATH, or leave out {', '.join(needs)}")
    return args


def load_label(mode: str, window: int, args: argparse.Namespace) -> Optional[str]:
    """How the broadcast publisher paces itself, for the tables (None for echo)."""
    if mode != "broadcast":
        return None
    if args.interval_ms:
        return f"every {args.interval_ms:g} ms"
    return "closed loop" if window == 1 else f"window {window}"


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    ensure_ws_bench(args.ws_bench)
    counts = {"echo": args.echo_sockets, "broadcast": args.broadcast_sockets,
              "pubsub": args.pubsub_sockets}
    ensure_nofile(max(max(counts[s]) for s in args.scenarios) + 256)
    logdir = Path(tempfile.mkdtemp(prefix="narwhal-wsbench-"))
    host = machine()
    print(f"# {host}; RLIMIT_NOFILE soft {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}; "
          f"server logs in {logdir}", flush=True)
    results: list[dict] = []
    commands: list[str] = []
    problems: list[str] = []
    running: list[Server] = []
    try:
        for scenario in args.scenarios:
            mode = SCENARIOS[scenario][0]
            print(f"\n### scenario {scenario}", flush=True)
            servers = []
            for name in args.servers:
                port = free_port()
                srv = WsServer(name, server_argv(name, app_module(scenario, name), port, args),
                               port, logdir / f"{name}-{scenario}.log",
                               ready=ready_log(name) if name == "granian" else None)
                running.append(srv)
                if not try_start(srv, f"{scenario}/{name}", problems):
                    continue
                commands.append(shlex.join(srv.argv))
                if bad := check_server(srv, args, mode):
                    problem(problems, f"{scenario}/{name}: {bad}")
                servers.append(srv)
            for rnd in range(1, args.rounds + 1):
                shift = (rnd - 1) % max(len(servers), 1)
                order = servers[shift:] + servers[:shift]
                windows = args.window if mode == "broadcast" else [1]
                for sockets, window, srv in ((n, w, s) for n in counts[scenario]
                                             for w in windows for s in order):
                    if not srv.alive():
                        continue
                    argv = bench_argv(args, mode, srv.port, sockets, args.duration,
                                      args.warmup, window)
                    r = run_bench(srv, argv, args.duration, args.warmup)
                    commands.append(r["command"])
                    r.update(scenario=scenario, sockets=sockets, server=srv.name, round=rnd,
                             app=app_module(scenario, srv.name),
                             window_label=load_label(mode, window, args))
                    results.append(r)
                    extra = (f"{r['window_label']}  fan-out p99 "
                             f"{fmt(r.get('fanout_p99_us'), 0)} us  "
                             if mode == "broadcast" else "")
                    print(f"  r{rnd} {srv.name:<8} n={sockets:<5} {fmt(r.get('rate'), 0):>9}/s  "
                          f"p50 {fmt(r.get('p50_us'), 0)} us  p99 {fmt(r.get('p99_us'), 0)} us  "
                          f"{extra}cpu {fmt(r.get('cpu_us_per_msg'), 2)} us/msg  "
                          f"srv {fmt(r.get('server_cpu_pct'), 0)}%  "
                          f"cli {fmt(r.get('client_cpu_pct'), 0)}%  "
                          f"connected {r.get('connected')}  err {r.get('errors')}"
                          + (f"  {r['error']}" if "error" in r else ""), flush=True)
                    if bad := wrong_delivery(r):
                        problems.append(f"{scenario}/{srv.name}/{sockets} r{rnd}: {bad}")
                    if "error" in r or r.get("errors") or r.get("connected") != sockets:
                        problems.append(f"{scenario}/{srv.name}/{sockets} r{rnd}: "
                                        f"{r.get('error') or ''} connected "
                                        f"{r.get('connected')}/{sockets}, "
                                        f"{r.get('errors')} errors: {r.get('first_error')}")
                    check_alive(srv, f"{scenario}/{srv.name}", problems)
            for srv in servers:
                srv.stop()
    except KeyboardInterrupt:
        print("\ninterrupted; stopping servers", flush=True)
        return 130
    finally:
        for srv in running:
            srv.stop()

    rows = summarise(results)
    print_tables(rows, args.rounds)
    meta = {"machine": host, "rounds": args.rounds, "duration": args.duration,
            "warmup": args.warmup, "size": args.size, "interval_ms": args.interval_ms,
            "windows": args.window,
            "servers": args.servers, "scenarios": args.scenarios, "sockets": counts,
            "commands": list(dict.fromkeys(without_port(c) for c in commands)),
            "note": "ws_bench runs on the same machine and cores as the servers"}
    print_commands(commands, problems)
    write_json(args.json, {"meta": meta, "summary": rows, "runs": results})
    if args.markdown:
        print("\n" + markdown(rows, meta))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
