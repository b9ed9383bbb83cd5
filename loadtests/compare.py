#!/usr/bin/python3
"""Side-by-side wrk comparison of narwhal, uvicorn (Debian's and PyPI's), granian and a
bare Beast server, each also with several worker processes (`narwhal-w2`, `granian-w2`).

Each scenario starts every selected server once (own free port on 127.0.0.1),
checks its answer, warms it up, then runs wrk interleaved: round 1 = each server
once per connection count, round 2 = the same again (server order rotated), ...
Reported numbers are medians over rounds. Server CPU (utime+stime of the process,
its threads and all its descendant processes, from /proc) is read right before and
after each wrk run; CPU/request = delta / completed requests, and 1 / CPU/request is the
req/s one core would serve. Servers and scenarios are described in servers.py and
scenarios.py.

--tls runs the same comparison over HTTPS (one certificate made at start), --handshake
with a new TLS connection per request, full or resumed: see tls.py.

Run from anywhere:  /usr/bin/python3 loadtests/compare.py --help
"""

from __future__ import annotations

import argparse
import http.client
import json
import resource
import shlex
import signal
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

from harness import (HOST, REPO, Server, check_alive, check_names, context_switches,
                     cpu_delta_seconds, csv, fmt, free_port, loadavg, machine, median, on_sigterm, parse_wrk, parser,
                     print_commands, problem, ratio, tcp_active_opens, tree_cpu, try_start,
                     without_port, write_json)
from per_core import markdown_sections
from scenarios import SCENARIOS, Scenario
from servers import (ALL_SERVERS, DEFAULT_VENV, Setup, base_of, describe, ensure_beast,
                     environment_of, environments, narwhal_has_tls, narwhal_python, parse_variant,
                     ready_log, server_argv, skip_reason, tls_skip_reason, uses_venv,
                     version_mismatch)
from tls import (HANDSHAKE_MODES, MODES, TlsFiles, client_context, describe_session,
                 is_handshake, label, make_certificate, mode_skip, run_s_time, s_time_argv,
                 session_facts, tls_markdown)

# ratios are against the first of these that runs (unless --baseline names one)
BASELINE_PREFERENCE = ("granian", "uvicorn-pypi", "uvicorn")
# seconds for a server to serve: several workers each import the app on a busy machine
START_TIMEOUT = 60.0


# ---------------------------------------------------------------- servers

def ask(port: int, method: str, path: str, body: bytes = b"",
        content_type: Optional[str] = None,
        tls: Optional[ssl.SSLContext] = None) -> tuple[int, bytes]:
    conn = (http.client.HTTPSConnection(HOST, port, timeout=10, context=tls) if tls
            else http.client.HTTPConnection(HOST, port, timeout=10))
    try:
        headers = {"Content-Type": content_type} if content_type else {}
        conn.request(method, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def check_response(port: int, scenario: Scenario, expected_env: Optional[dict],
                   tls: Optional[ssl.SSLContext] = None) -> Optional[str]:
    """One request before measuring (and, for framework apps, GET /versions compared with
    the environment the server should run); returns a problem description or None. With
    `tls`, over HTTPS, the server's certificate verified by that context."""
    try:
        status, body = ask(port, scenario.method, scenario.path, scenario.body,
                           scenario.content_type, tls)
        if bad := scenario.check(status, body):
            return bad
        if scenario.framework and expected_env is not None:
            status, body = ask(port, "GET", "/versions", tls=tls)
            if status != 200:
                return f"GET /versions: status {status}"
            return version_mismatch(json.loads(body), expected_env)
        return None
    except (OSError, http.client.HTTPException, ValueError) as e:
        return f"check request failed: {e}"


# ---------------------------------------------------------------- wrk

def wrk_argv(port: int, conns: int, duration: int, scenario: Scenario,
             threads: int, mode: Optional[str] = None) -> list[str]:
    """wrk's command; with a TLS `mode`, over HTTPS, and for `resumed` with a new
    connection per request (wrk reconnects after a `Connection: close` answer)."""
    argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency"]
    if mode == "resumed":
        argv += ["-H", "Connection: close"]
    if scenario.wrk_script:
        argv += ["-s", scenario.wrk_script]
    scheme = "https" if mode else "http"
    return argv + [f"{scheme}://{HOST}:{port}{scenario.path}"]


def client_command(port: int, conns: int, duration: int, scenario: Scenario, threads: int,
                   mode: Optional[str], tls: Optional[TlsFiles]) -> str:
    """The load client's command line as printed and reported."""
    if mode == "full":
        return f"{conns} x {shlex.join(s_time_argv(port, duration, scenario.path, tls))}"
    return shlex.join(wrk_argv(port, conns, duration, scenario, threads, mode))


def run_wrk(argv: list[str], duration: int) -> dict:
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True,
                          timeout=duration + 60)
    res = parse_wrk(proc.stdout)
    res["wrk_rc"] = proc.returncode
    if proc.returncode != 0 or res["rps"] is None:
        res["error"] = f"wrk rc={proc.returncode}: {(proc.stderr or proc.stdout).strip()[-300:]}"
    return res


def run_client(server: Server, conns: int, duration: int, scenario: Scenario,
               threads: int, mode: Optional[str] = None, tls: Optional[TlsFiles] = None) -> dict:
    """One measured run of the load client (wrk, or s_time for full handshakes) with the
    server's CPU, context switches and the TCP connections opened read around it."""
    command = client_command(server.port, conns, duration, scenario, threads, mode, tls)
    print(f"$ {command}", flush=True)
    assert server.proc is not None
    load = loadavg()
    before = tree_cpu(server.proc.pid)
    switches = context_switches(pid for pid, _ in before)
    opens = tcp_active_opens()
    client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    if mode == "full":
        assert tls is not None
        res = run_s_time(server.port, conns, duration, scenario.path, tls)
    else:
        res = run_wrk(wrk_argv(server.port, conns, duration, scenario, threads, mode), duration)
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    opens_after = tcp_active_opens()
    after = tree_cpu(server.proc.pid)
    switches = context_switches(pid for pid, _ in after) - switches
    cpu = cpu_delta_seconds(before, after)
    requests = res["requests"]
    res.update(command=command, cpu_s=cpu, loadavg_before=load, mode=mode,
               cpu_us_per_req=cpu / requests * 1e6 if requests else None,
               switches_per_req=switches / requests if requests else None,
               conns_per_req=((opens_after - opens) / requests
                              if requests and opens is not None and opens_after is not None
                              else None),
               wrk_cpu_s=(client_after.ru_utime + client_after.ru_stime
                          - client_before.ru_utime - client_before.ru_stime))
    return res


# ---------------------------------------------------------------- reporting

def summarise(results: list[dict], skipped: list[dict], baseline: Optional[str]) -> list[dict]:
    """Median per (scenario, connections, server) in first-seen order, plus a row per
    skipped server; ratios against the baseline server in the same scenario/connections."""
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
            "switches_per_req": median([r.get("switches_per_req") for r in runs]),
            "conns_per_req": median([r.get("conns_per_req") for r in runs]),
            "errors": sum(r.get("non2xx", 0) + r.get("socket_errors", 0) for r in runs),
            "failed_runs": sum(1 for r in runs if "error" in r),
        })
        rows[-1]["rps_per_core"] = per_core(rows[-1]["cpu_us_per_req"])
    for row in rows:
        base = next((b for b in rows if b["server"] == baseline
                     and b["scenario"] == row["scenario"]
                     and b["connections"] == row["connections"]), None)
        row["rps_ratio"] = ratio(row["rps"], base["rps"]) if base else None
        row["cpu_ratio"] = ratio(row["cpu_us_per_req"], base["cpu_us_per_req"]) if base else None
    # a skipped server gets a row where its numbers would be (after the last row of its scenario)
    for skip in skipped:
        for conns in skip["connections"]:
            at = max((i for i, r in enumerate(rows)
                      if (r["scenario"], r["connections"]) == (skip["scenario"], conns)),
                     default=len(rows) - 1)
            rows.insert(at + 1, {"scenario": skip["scenario"], "connections": conns,
                                 "server": skip["server"], "skipped": skip["reason"]})
    return rows


def per_core(cpu_us_per_req: Optional[float]) -> Optional[float]:
    """Requests one core would serve per second at this CPU cost: 1 / CPU per request.
    The projection for a machine with more cores, where wrk does not take CPU from the
    server; it holds as long as CPU per request does not grow with the process count."""
    return 1e6 / cpu_us_per_req if cpu_us_per_req else None


def print_tables(rows: list[dict], rounds: int, baseline: Optional[str]) -> None:
    keys = list(dict.fromkeys((r["scenario"], r["connections"]) for r in rows))
    for scenario, conns in keys:
        group = [r for r in rows if (r["scenario"], r["connections"]) == (scenario, conns)]
        # a new connection per request: a request is a handshake, and the TCP connections
        # opened per request (machine-wide) show that the client really reconnected
        handshakes = is_handshake(scenario)
        unit = "hs" if handshakes else "req"
        print(f"\n== {scenario}, {conns} connections (median of {rounds} rounds) ==")
        print(f"{'server':<18}{'hs/s' if handshakes else 'req/s':>12}{'p50 ms':>9}{'p99 ms':>9}"
              f"{'CPU us/' + unit:>12}{unit + '/s/core':>12}{'cs/' + unit:>8}{'errors':>8}"
              + (f"{'conns/hs':>10}" if handshakes else ""))
        for r in group:
            if "skipped" in r:
                print(f"{r['server']:<18}  skipped: {r['skipped']}")
                continue
            note = f"  ({r['failed_runs']} failed runs)" if r["failed_runs"] else ""
            opened = f"{fmt(r.get('conns_per_req'), 2):>10}" if handshakes else ""
            print(f"{r['server']:<18}{fmt(r['rps']):>12}{fmt(r['p50_ms'], 2):>9}"
                  f"{fmt(r['p99_ms'], 2):>9}{fmt(r['cpu_us_per_req']):>12}"
                  f"{fmt(r['rps_per_core'], 0):>12}{fmt(r['switches_per_req'], 2):>8}"
                  f"{r['errors']:>8}{opened}{note}")
        for r in group:
            if r["server"] != baseline and (r.get("rps_ratio") or r.get("cpu_ratio")):
                print(f"{r['server']}/{baseline}: {unit}/s x{fmt(r['rps_ratio'], 2)}, "
                      f"CPU/{unit} x{fmt(r['cpu_ratio'], 2)}")


def markdown(rows: list[dict], meta: dict) -> str:
    base = meta["baseline"] or "-"
    out = [f"Machine: {meta['machine']}. wrk runs on the same cores as the server. "
           f"{meta['rounds']} interleaved rounds of {meta['duration']}s per run, "
           f"medians shown; ratios are against {base}. Load average (1, 5, 15 min) "
           f"before: {meta['loadavg_before']}, after: {meta['loadavg_after']}.", "",
           *[f"* {line}" for line in meta["environments"]], "",
           "Run with:", "", "```", meta["command_line"], "```", "",
           f"| scenario | conns | server | req/s | p50 ms | p99 ms | CPU µs/req "
           f"| req/s per core | switches/req | errors | req/s vs {base} | CPU/req vs {base} |",
           "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "skipped" in r:
            out.append(f"| {r['scenario']} | {r['connections']} | {r['server']} "
                       f"| skipped: {r['skipped']} | | | | | | | | |")
            continue
        out.append(f"| {r['scenario']} | {r['connections']} | {r['server']} | {fmt(r['rps'], 0)} "
                   f"| {fmt(r['p50_ms'], 2)} | {fmt(r['p99_ms'], 2)} "
                   f"| {fmt(r['cpu_us_per_req'])} | {fmt(r.get('rps_per_core'), 0)} "
                   f"| {fmt(r.get('switches_per_req'), 2)} | {r['errors']} "
                   f"| {fmt(r['rps_ratio'], 2)} | {fmt(r['cpu_ratio'], 2)} |")
    out += ["", "req/s per core = 1 / CPU per request: what one core serves when the "
            "server has it to itself. switches/req: context switches of the server's "
            "threads per request.", *tls_markdown(rows, meta), *markdown_sections(rows), "",
            "Commands (ports vary per run):", "", "```", *meta["commands"], "```"]
    return "\n".join(out)


# ---------------------------------------------------------------- main

def parse_args() -> argparse.Namespace:
    p = parser(__doc__)
    p.add_argument("--servers", type=csv, default=list(ALL_SERVERS),
                   help=f"comma list of {','.join(ALL_SERVERS)} (default all), each "
                        f"optionally with -wN (N worker processes: narwhal-w2, uvicorn-pypi-w2, "
                        f"granian-w2) and, for narwhal, -iM (M interpreters: narwhal-i2) and -tN "
                        f"(--io-threads N: narwhal-w2-t1)")
    p.add_argument("--scenarios", type=csv, default=list(SCENARIOS),
                   help=f"comma list of {','.join(SCENARIOS)} (default all)")
    p.add_argument("--connections", type=lambda s: [int(x) for x in csv(s)], default=[64, 256])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=5, help="seconds per wrk run (integer)")
    p.add_argument("--warmup", type=int, default=1, help="seconds of wrk per server start, 0 = none")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (-t)")
    p.add_argument("--narwhal-bin", type=Path, default=REPO / "build" / "narwhal")
    p.add_argument("--narwhal-args", default="", help="extra narwhal arguments (one string)")
    p.add_argument("--granian-args", default="",
                   help="extra granian flags (one string); a repeated flag overrides ours")
    p.add_argument("--beast-bin", type=Path, default=REPO / "build" / "bare_beast" / "bare_beast")
    p.add_argument("--venv", type=Path, default=DEFAULT_VENV,
                   help="virtualenv with the pinned PyPI packages (make venv)")
    p.add_argument("--baseline",
                   help=f"server the ratios are against, one of --servers (default: the "
                        f"first running of {', '.join(BASELINE_PREFERENCE)})")
    p.add_argument("--tls", action="store_true",
                   help="serve HTTPS (one self-signed ECDSA P-256 certificate made at start); "
                        "wrk keeps its connections open")
    p.add_argument("--handshake", type=csv, nargs="?", const=list(HANDSHAKE_MODES),
                   metavar="MODES",
                   help=f"with a new TLS connection per request (implies --tls): comma list "
                        f"of {','.join(MODES)} (default {','.join(HANDSHAKE_MODES)}); full: a "
                        f"full handshake each (openssl s_time), resumed: the session resumed "
                        f"(wrk with Connection: close), keepalive: as --tls")
    p.add_argument("--json", type=Path, help="write raw per-run results here")
    p.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    p.add_argument("--from-json", type=Path, metavar="FILE",
                   help="run nothing: print the tables (and with --markdown the Markdown) of "
                        "a run saved with --json")
    args = p.parse_args()
    if args.from_json:
        return args
    for name in args.servers:
        try:
            parse_variant(name)
        except ValueError as e:
            p.error(str(e))
    if len(set(args.servers)) != len(args.servers):
        p.error("a server is named twice in --servers")
    if args.baseline is not None and args.baseline not in args.servers:
        p.error(f"--baseline {args.baseline} is not in --servers")
    check_names(p, "scenario", args.scenarios, SCENARIOS)
    if args.handshake is not None:
        check_names(p, "--handshake mode", args.handshake, MODES)
        args.tls = True
    # None: plain HTTP; else the TLS modes each scenario runs in, in this order
    args.modes = ([None] if not args.tls
                  else list(dict.fromkeys(args.handshake or ["keepalive"])))
    if args.rounds < 1 or args.duration < 1 or args.warmup < 0:
        p.error("--rounds and --duration must be >= 1, --warmup >= 0 (wrk takes whole seconds)")
    needs = [f"{srv}/{sc}" for sc in args.scenarios for srv in args.servers
             if uses_venv(srv, SCENARIOS[sc]) and base_of(srv) != "beast"]
    if needs and not (args.venv / "bin" / "python").exists():
        p.error(f"{args.venv} is not a virtualenv (no bin/python), needed by {', '.join(needs)}: "
                f"create it with `make venv`, pass --venv PATH, or leave out "
                f"uvicorn-pypi, granian and the starlette/fastapi scenarios")
    if args.baseline is None:
        args.baseline = next((s for s in BASELINE_PREFERENCE if s in args.servers), None)
    return args


def without_tmp(command: str, logdir: Path) -> str:
    """A command with the run's temporary directory (the certificate's) as <tmp>."""
    return command.replace(str(logdir), "<tmp>")


def reprint(args: argparse.Namespace) -> int:
    """The tables of a saved run (--json), e.g. to paste them again after a format change."""
    data = json.loads(args.from_json.read_text())
    meta, rows = data["meta"], data["summary"]
    for r in rows:
        if "skipped" not in r:
            r.setdefault("rps_per_core", per_core(r.get("cpu_us_per_req")))
    meta.setdefault("loadavg_before", "?")
    meta.setdefault("loadavg_after", "?")
    meta.setdefault("command_line", "(not recorded)")
    print_tables(rows, meta["rounds"], meta["baseline"])
    if args.markdown:
        print("\n" + markdown(rows, meta))
    return 0


def main() -> int:
    args = parse_args()
    if args.from_json:
        return reprint(args)
    signal.signal(signal.SIGTERM, on_sigterm)
    setup = Setup(args.narwhal_bin, args.narwhal_args, args.beast_bin, args.venv,
                  args.granian_args)
    if "beast" in args.servers and "plaintext" in args.scenarios and not args.tls:
        ensure_beast(args.beast_bin)
    need_venv = any(uses_venv(srv, SCENARIOS[sc]) for sc in args.scenarios for srv in args.servers
                    if base_of(srv) != "beast")
    envs = environments(setup, need_venv)
    # only -iM (M > 1) asks which CPython narwhal embeds
    embedded = (narwhal_python(args.narwhal_bin)
                if any((parse_variant(s).interpreters or 1) > 1 for s in args.servers) else None)
    logdir = Path(tempfile.mkdtemp(prefix="narwhal-bench-"))
    host = machine()
    load_before = loadavg()
    print(f"# {host}; load average {load_before}; server logs in {logdir}", flush=True)
    for line in describe(envs):
        print(f"# {line}", flush=True)
    tls_meta: dict = {}
    client_tls: Optional[ssl.SSLContext] = None
    narwhal_tls = False
    if args.tls:
        setup.tls = make_certificate(logdir)
        client_tls = client_context(setup.tls)
        tls_meta = {"certificate_command": without_tmp(setup.tls.command, logdir),
                    "modes": args.modes, "client_openssl": ssl.OPENSSL_VERSION, "sessions": {}}
        narwhal_tls = (any(base_of(s) == "narwhal" for s in args.servers)
                       and narwhal_has_tls(args.narwhal_bin))
    results: list[dict] = []
    skipped: list[dict] = []
    commands: list[str] = [setup.tls.command] if setup.tls else []
    problems: list[str] = []
    running: list[Server] = []
    try:
        for name in args.scenarios:
            scenario = SCENARIOS[name]
            print(f"\n### scenario {name}", flush=True)
            modes = []
            for mode in args.modes:
                if reason := mode_skip(mode, scenario.method):
                    print(f"  {label(name, mode)}: skipped: {reason}", flush=True)
                    skipped.append({"scenario": label(name, mode), "server": "(all)",
                                    "reason": reason, "connections": args.connections})
                else:
                    modes.append(mode)
            if not modes:
                continue
            servers = []
            for server in args.servers:
                tls_reason = tls_skip_reason(server, narwhal_tls) if args.tls else None
                if reason := tls_reason or skip_reason(server, scenario, envs, embedded):
                    if base_of(server) != "beast" or tls_reason:  # plaintext-only: no row
                        print(f"  {server}: skipped: {reason}", flush=True)
                        skipped += [{"scenario": label(name, mode), "server": server,
                                     "reason": reason, "connections": args.connections}
                                    for mode in modes]
                    continue
                port = free_port()
                srv = Server(server, server_argv(server, scenario, port, setup), port,
                             logdir / f"{server}-{name}.log", ready=ready_log(server))
                running.append(srv)
                if not try_start(srv, f"{name}/{server}", problems, START_TIMEOUT):
                    continue
                commands.append(shlex.join(srv.argv))
                env = environment_of(server, scenario)
                if bad := check_response(port, scenario, envs.get(env) if env else None,
                                         client_tls):
                    problem(problems, f"{name}/{server}: {bad}")
                if setup.tls and server not in tls_meta["sessions"]:
                    try:
                        facts = session_facts(setup.tls, port, scenario.path)
                        tls_meta["sessions"][server] = facts
                        print(f"  {server}: {describe_session(facts)}", flush=True)
                    except (OSError, ValueError) as e:
                        problem(problems, f"{name}/{server}: TLS session check failed: {e}")
                if args.warmup:
                    warm = run_client(srv, max(args.connections), args.warmup, scenario,
                                      args.threads, modes[0], setup.tls)
                    print(f"  warm-up {server}: {fmt(warm['rps'])} req/s  "
                          f"{warm.get('error', '')}", flush=True)
                servers.append(srv)
            for rnd in range(1, args.rounds + 1):
                shift = (rnd - 1) % max(len(servers), 1)  # rotate who goes first
                order = servers[shift:] + servers[:shift]
                for mode in modes:
                    for conns in args.connections:
                        for srv in order:
                            if not srv.alive():
                                continue
                            r = run_client(srv, conns, args.duration, scenario, args.threads,
                                           mode, setup.tls)
                            commands.append(r["command"])
                            r.update(scenario=label(name, mode), connections=conns,
                                     server=srv.name, round=rnd)
                            results.append(r)
                            opened = (f"  conns {fmt(r['conns_per_req'], 2)}/req"
                                      if mode in HANDSHAKE_MODES else "")
                            print(f"  r{rnd} {srv.name:<16} {label(name, mode)} c={conns:<4} "
                                  f"{fmt(r['rps']):>10} req/s  "
                                  f"p50 {fmt(r['p50_ms'], 2)} ms  p99 {fmt(r['p99_ms'], 2)} ms  "
                                  f"cpu {fmt(r['cpu_us_per_req'])} us/req  "
                                  f"cs {fmt(r['switches_per_req'], 2)}/req  "
                                  f"err {r['non2xx'] + r['socket_errors']}{opened}"
                                  + (f"  {r['error']}" if "error" in r else ""), flush=True)
                            check_alive(srv, f"{name}/{srv.name}", problems)
            for srv in servers:
                srv.stop()
    except KeyboardInterrupt:
        print("\ninterrupted; stopping servers", flush=True)
        return 130
    finally:
        for srv in running:
            srv.stop()

    load_after = loadavg()
    rows = summarise(results, skipped, args.baseline)
    print_tables(rows, args.rounds, args.baseline)
    print(f"\nload average (1, 5, 15 min) before: {load_before}, after: {load_after}")
    meta = {"machine": host, "rounds": args.rounds, "duration": args.duration,
            "loadavg_before": load_before, "loadavg_after": load_after,
            "command_line": shlex.join(["/usr/bin/python3", "loadtests/compare.py",
                                        *sys.argv[1:]]),
            "warmup": args.warmup, "servers": args.servers, "scenarios": args.scenarios,
            "connections": args.connections, "baseline": args.baseline, "tls": tls_meta,
            "versions": envs, "environments": describe(envs),
            "commands": list(dict.fromkeys(without_port(without_tmp(c, logdir))
                                           for c in commands)),
            "note": "wrk runs on the same machine and cores as the servers"}
    print_commands(commands, problems)
    write_json(args.json, {"meta": meta, "summary": rows, "runs": results})
    if args.markdown:
        print("\n" + markdown(rows, meta))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
