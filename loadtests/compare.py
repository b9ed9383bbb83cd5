#!/usr/bin/python3
"""Side-by-side wrk comparison of narwhal, uvicorn and a bare Beast server.

Each scenario starts every selected server once (own free port on 127.0.0.1),
warms it up, then runs wrk interleaved: round 1 = each server once per
connection count, round 2 = the same again (server order rotated), ...
Reported numbers are medians over rounds. Server CPU (utime+stime of the
process, its threads and all its descendant processes, from /proc) is read
right before and after each wrk run; CPU/request = delta / completed requests.

Run from anywhere:  /usr/bin/python3 loadtests/compare.py --help
"""

from __future__ import annotations

import argparse
import http.client
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

from harness import (HOST, PYTHON, REPO, Server, check_alive, check_names, cpu_delta_seconds,
                     csv, fmt, free_port, machine, median, on_sigterm, parse_wrk, parser,
                     print_commands, problem, ratio, rel, tree_cpu, try_start, without_port,
                     write_json)

# scenario -> (module in loadtests/apps, wrk script or None)
SCENARIOS: dict[str, tuple[str, Optional[str]]] = {
    "plaintext": ("plaintext", None),
    "json": ("json_app", None),
    "echo4k": ("echo", "loadtests/post4k.lua"),
    "starlette": ("starlette_app", None),
}
BEAST_SCENARIOS = {"plaintext"}  # the bare server only knows "Hello, world!"
ALL_SERVERS = ("narwhal", "uvicorn", "beast")


# ---------------------------------------------------------------- servers

def server_argv(name: str, module: str, port: int, args: argparse.Namespace) -> list[str]:
    if name == "narwhal":
        return [rel(args.narwhal_bin), f"{module}:app", "--app-dir", "loadtests/apps",
                "--host", HOST, "--port", str(port), "--no-access-log",
                *shlex.split(args.narwhal_args)]
    if name == "uvicorn":
        return [PYTHON, "-m", "uvicorn", f"{module}:app", "--app-dir", "loadtests/apps",
                "--host", HOST, "--port", str(port), "--loop", "uvloop", "--http", "httptools",
                "--no-access-log", "--workers", "1"]
    if name == "beast":
        return [rel(args.beast_bin), HOST, str(port)]
    raise ValueError(name)


def ensure_beast(binary: Path) -> None:
    if binary.exists():
        return
    build = rel(binary.parent)
    for cmd in (["cmake", "-S", "loadtests/bare_beast", "-B", build,
                 "-DCMAKE_BUILD_TYPE=Release"],
                ["cmake", "--build", str(build)]):
        print(f"$ {shlex.join(cmd)}", flush=True)
        subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)


def check_response(port: int, scenario: str) -> Optional[str]:
    """One request before measuring; returns a problem description or None."""
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        if scenario == "echo4k":
            sent = b"x" * 4096
            conn.request("POST", "/", body=sent)
            want = sent
        else:
            conn.request("GET", "/")
            want = b'{"message": "Hello, world!"}' if scenario == "json" else b"Hello, world!"
        resp = conn.getresponse()
        got = resp.read()
        if resp.status != 200 or got != want:
            return f"unexpected response {resp.status} {got[:60]!r}"
        return None
    except (OSError, http.client.HTTPException) as e:
        return f"check request failed: {e}"
    finally:
        conn.close()


# ---------------------------------------------------------------- wrk

def wrk_argv(port: int, conns: int, duration: int, script: Optional[str],
             threads: int) -> list[str]:
    argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency"]
    if script:
        argv += ["-s", script]
    return argv + [f"http://{HOST}:{port}/"]


def run_wrk(server: Server, conns: int, duration: int, script: Optional[str],
            threads: int) -> dict:
    argv = wrk_argv(server.port, conns, duration, script, threads)
    print(f"$ {shlex.join(argv)}", flush=True)
    assert server.proc is not None
    before = tree_cpu(server.proc.pid)
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True,
                          timeout=duration + 60)
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = tree_cpu(server.proc.pid)
    res = parse_wrk(proc.stdout)
    cpu = cpu_delta_seconds(before, after)
    res.update(command=shlex.join(argv), cpu_s=cpu,
               cpu_us_per_req=cpu / res["requests"] * 1e6 if res["requests"] else None,
               wrk_cpu_s=(wrk_after.ru_utime + wrk_after.ru_stime
                          - wrk_before.ru_utime - wrk_before.ru_stime),
               wrk_rc=proc.returncode)
    if proc.returncode != 0 or res["rps"] is None:
        res["error"] = f"wrk rc={proc.returncode}: {(proc.stderr or proc.stdout).strip()[-300:]}"
    return res


# ---------------------------------------------------------------- reporting

def summarise(results: list[dict]) -> list[dict]:
    """Median per (scenario, connections, server), in first-seen order."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["scenario"], r["connections"], r["server"]), []).append(r)
    rows = []
    for (scenario, conns, server), runs in groups.items():
        rows.append({
            "scenario": scenario, "connections": conns, "server": server, "runs": len(runs),
            "rps": median([r.get("rps") for r in runs]),
            "p50_ms": median([r.get("p50_ms") for r in runs]),
            "p99_ms": median([r.get("p99_ms") for r in runs]),
            "cpu_us_per_req": median([r.get("cpu_us_per_req") for r in runs]),
            "errors": sum(r.get("non2xx", 0) + r.get("socket_errors", 0) for r in runs),
            "failed_runs": sum(1 for r in runs if "error" in r),
        })
    for row in rows:  # ratios against uvicorn in the same scenario/connections
        base = next((b for b in rows if b["server"] == "uvicorn"
                     and b["scenario"] == row["scenario"]
                     and b["connections"] == row["connections"]), None)
        row["rps_ratio"] = ratio(row["rps"], base["rps"]) if base else None
        row["cpu_ratio"] = ratio(row["cpu_us_per_req"], base["cpu_us_per_req"]) if base else None
    return rows


def print_tables(rows: list[dict], rounds: int) -> None:
    keys = list(dict.fromkeys((r["scenario"], r["connections"]) for r in rows))
    for scenario, conns in keys:
        group = [r for r in rows if (r["scenario"], r["connections"]) == (scenario, conns)]
        print(f"\n== {scenario}, {conns} connections (median of {rounds} rounds) ==")
        print(f"{'server':<9}{'req/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}"
              f"{'errors':>8}")
        for r in group:
            note = f"  ({r['failed_runs']} failed runs)" if r["failed_runs"] else ""
            print(f"{r['server']:<9}{fmt(r['rps']):>12}{fmt(r['p50_ms'], 2):>9}"
                  f"{fmt(r['p99_ms'], 2):>9}{fmt(r['cpu_us_per_req']):>12}{r['errors']:>8}{note}")
        for r in group:
            if r["server"] != "uvicorn" and (r["rps_ratio"] or r["cpu_ratio"]):
                print(f"{r['server']}/uvicorn: req/s x{fmt(r['rps_ratio'], 2)}, "
                      f"CPU/req x{fmt(r['cpu_ratio'], 2)}")


def markdown(rows: list[dict], meta: dict) -> str:
    out = [f"Machine: {meta['machine']}. wrk runs on the same cores as the server. "
           f"{meta['rounds']} interleaved rounds of {meta['duration']}s per run, "
           f"medians shown; ratios are against uvicorn.", "",
           "| scenario | conns | server | req/s | p50 ms | p99 ms | CPU µs/req | errors "
           "| req/s vs uvicorn | CPU/req vs uvicorn |",
           "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['scenario']} | {r['connections']} | {r['server']} | {fmt(r['rps'], 0)} "
                   f"| {fmt(r['p50_ms'], 2)} | {fmt(r['p99_ms'], 2)} "
                   f"| {fmt(r['cpu_us_per_req'])} | {r['errors']} "
                   f"| {fmt(r['rps_ratio'], 2)} | {fmt(r['cpu_ratio'], 2)} |")
    out += ["", "Commands (ports vary per run):", "", "```",
            *meta["commands"], "```"]
    return "\n".join(out)


# ---------------------------------------------------------------- main

def parse_args() -> argparse.Namespace:
    p = parser(__doc__)
    p.add_argument("--servers", type=csv, default=["narwhal", "uvicorn"],
                   help=f"comma list of {','.join(ALL_SERVERS)} (default narwhal,uvicorn)")
    p.add_argument("--scenarios", type=csv, default=list(SCENARIOS),
                   help=f"comma list of {','.join(SCENARIOS)} (default all)")
    p.add_argument("--connections", type=lambda s: [int(x) for x in csv(s)], default=[64, 256])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=5, help="seconds per wrk run (integer)")
    p.add_argument("--warmup", type=int, default=1, help="seconds of wrk per server start, 0 = none")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (-t)")
    p.add_argument("--narwhal-bin", type=Path, default=REPO / "build" / "narwhal")
    p.add_argument("--narwhal-args", default="", help="extra narwhal arguments (one string)")
    p.add_argument("--beast-bin", type=Path, default=REPO / "build" / "bare_beast" / "bare_beast")
    p.add_argument("--json", type=Path, help="write raw per-run results here")
    p.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    args = p.parse_args()
    check_names(p, "server", args.servers, ALL_SERVERS)
    check_names(p, "scenario", args.scenarios, SCENARIOS)
    if args.rounds < 1 or args.duration < 1 or args.warmup < 0:
        p.error("--rounds and --duration must be >= 1, --warmup >= 0 (wrk takes whole seconds)")
    return args


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    if "beast" in args.servers and BEAST_SCENARIOS & set(args.scenarios):
        ensure_beast(args.beast_bin)
    logdir = Path(tempfile.mkdtemp(prefix="narwhal-bench-"))
    host = machine()
    print(f"# {host}; server logs in {logdir}", flush=True)
    results: list[dict] = []
    commands: list[str] = []
    problems: list[str] = []
    running: list[Server] = []
    try:
        for scenario in args.scenarios:
            module, script = SCENARIOS[scenario]
            names = [s for s in args.servers if s != "beast" or scenario in BEAST_SCENARIOS]
            print(f"\n### scenario {scenario}", flush=True)
            servers = []
            for name in names:
                port = free_port()
                srv = Server(name, server_argv(name, module, port, args), port,
                             logdir / f"{name}-{scenario}.log")
                running.append(srv)
                if not try_start(srv, f"{scenario}/{name}", problems):
                    continue
                commands.append(shlex.join(srv.argv))
                if bad := check_response(port, scenario):
                    problem(problems, f"{scenario}/{name}: {bad}")
                if args.warmup:
                    warm = run_wrk(srv, max(args.connections), args.warmup, script, args.threads)
                    print(f"  warm-up {name}: {fmt(warm['rps'])} req/s  {warm.get('error', '')}",
                          flush=True)
                servers.append(srv)
            for rnd in range(1, args.rounds + 1):
                shift = (rnd - 1) % max(len(servers), 1)  # rotate who goes first
                order = servers[shift:] + servers[:shift]
                for conns in args.connections:
                    for srv in order:
                        if not srv.alive():
                            continue
                        r = run_wrk(srv, conns, args.duration, script, args.threads)
                        commands.append(r["command"])
                        r.update(scenario=scenario, connections=conns, server=srv.name,
                                 round=rnd)
                        results.append(r)
                        print(f"  r{rnd} {srv.name:<8} c={conns:<4} {fmt(r['rps']):>10} req/s  "
                              f"p50 {fmt(r['p50_ms'], 2)} ms  p99 {fmt(r['p99_ms'], 2)} ms  "
                              f"cpu {fmt(r['cpu_us_per_req'])} us/req  "
                              f"err {r['non2xx'] + r['socket_errors']}"
                              + (f"  {r['error']}" if "error" in r else ""), flush=True)
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
            "warmup": args.warmup, "servers": args.servers, "scenarios": args.scenarios,
            "connections": args.connections,
            "commands": list(dict.fromkeys(without_port(c) for c in commands)),
            "note": "wrk runs on the same machine and cores as the servers"}
    print_commands(commands, problems)
    write_json(args.json, {"meta": meta, "summary": rows, "runs": results})
    if args.markdown:
        print("\n" + markdown(rows, meta))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
