#!/usr/bin/python3
"""A large multipart upload through narwhal at several --read-window values and through
current uvicorn, with curl, in interleaved rounds; medians of wall time, server CPU and
the server's peak RSS.

    /usr/bin/python3 loadtests/upload.py [--size-mib 50] [--rounds 7]
        [--windows 65536,262144,1048576,4194304] [--apps fastapi,raw] [--venv build/venv]

Every server stays up for the whole run (one per configuration, each on its own free
port); a round sends one upload to each server in turn, in an order rotated every
round, so that a busy moment on the machine hits all of them alike. One warm-up upload
per server is not counted. The client is
    curl -s -o /dev/null -w '%{time_total}' -F file=@<50 MiB file> http://127.0.0.1:<port>/upload
for the FastAPI app (UploadFile) and `--data-binary @<file>` (no multipart) for the raw
ASGI app, which only counts the bytes receive() hands it.

The read window bounds the unread request body narwhal holds per request, so it is the
memory a slow app costs per uploading connection; the table puts that next to the
throughput it buys.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import harness
from harness import HOST, REPO, Server, fmt, median

NARWHAL = REPO / "build" / "narwhal"
APPS = {"fastapi": "upload_app:app", "raw": "upload_app:raw_app"}


def server_configs(windows: list[int], venv: Path) -> list[tuple[str, list[str]]]:
    """(label, argv without the port) for every server of the run."""
    configs = []
    for w in windows:
        configs.append((f"narwhal --read-window {w}",
                        [harness.rel(NARWHAL), "--venv", harness.rel(venv), "--app-dir", "loadtests/apps",
                         "--host", HOST, "--no-access-log", "--log-level", "warning",
                         "--read-window", str(w)]))
    configs.append(("uvicorn-pypi",
                    [harness.rel(venv / "bin" / "uvicorn"), "--app-dir", "loadtests/apps", "--host", HOST,
                     "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                     "--log-level", "warning"]))
    return configs


def curl(port: int, path: Path, app: str) -> float:
    data = ["-F", f"file=@{path}"] if app == "fastapi" else ["--data-binary", f"@{path}"]
    out = subprocess.run(
        ["curl", "-s", "-S", "--fail", "-o", "/dev/null", "-w", "%{time_total}", *data,
         f"http://{HOST}:{port}/upload"],
        capture_output=True, text=True, timeout=300, check=True)
    return float(out.stdout)


def peak_rss_mib(pid: int) -> float | None:
    kib = harness.status_kib(pid, "VmHWM")
    return kib / 1024 if kib is not None else None


def run_app(app: str, args, data: Path, logdir: Path, commands: list[str]) -> list[dict]:
    servers: list[tuple[str, Server]] = []
    try:
        for label, argv in server_configs(args.windows, args.venv):
            port = harness.free_port()
            full = [*argv, "--port", str(port), APPS[app]]
            srv = Server(label, full, port, logdir / f"{app}-{len(servers)}.log")
            srv.start(timeout=60)
            servers.append((label, srv))
            commands.append(harness.without_port(" ".join(full)))
        times: dict[str, list[float]] = {label: [] for label, _ in servers}
        cpu: dict[str, list[float]] = {label: [] for label, _ in servers}
        for label, srv in servers:
            curl(srv.port, data, app)  # warm-up: imports, first-request paths
        for r in range(args.rounds):
            order = servers[r % len(servers):] + servers[:r % len(servers)]
            for label, srv in order:
                before = harness.tree_cpu(srv.proc.pid)
                times[label].append(curl(srv.port, data, app))
                cpu[label].append(harness.cpu_delta_seconds(before, harness.tree_cpu(srv.proc.pid)))
            print(f"{app} round {r + 1}/{args.rounds} done", flush=True)
        rows = []
        for label, srv in servers:
            rows.append({"app": app, "server": label, "seconds": median(times[label]),
                         "cpu_seconds": median(cpu[label]), "peak_rss_mib": peak_rss_mib(srv.proc.pid),
                         "all_seconds": times[label]})
        return rows
    finally:
        for _, srv in servers:
            srv.stop()


def main() -> int:
    p = harness.parser(__doc__)
    p.add_argument("--size-mib", type=int, default=50)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--windows", type=lambda s: [int(x) for x in harness.csv(s)],
                   default=[65536, 262144, 1048576, 4194304])
    p.add_argument("--apps", type=harness.csv, default=["fastapi", "raw"])
    p.add_argument("--venv", type=Path, default=REPO / "build" / "venv")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    harness.check_names(p, "app", args.apps, APPS)
    if not shutil.which("curl"):
        p.error("curl is needed")
    args.venv = args.venv.resolve()
    os.chdir(REPO)

    tmp = Path(tempfile.mkdtemp(prefix="narwhal-upload-"))
    try:
        data = tmp / "upload.bin"
        with open(data, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
        commands: list[str] = []
        rows = []
        for app in args.apps:
            rows += run_app(app, args, data, tmp, commands)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{args.size_mib} MiB upload, {args.rounds} interleaved rounds, medians; {harness.machine()}")
    print(f"| app | server | wall s | server CPU s | MiB/s | peak RSS MiB |")
    print(f"|---|---|---:|---:|---:|---:|")
    for row in rows:
        rate = args.size_mib / row["seconds"] if row["seconds"] else None
        print(f"| {row['app']} | {row['server']} | {fmt(row['seconds'], 3)} | "
              f"{fmt(row['cpu_seconds'], 3)} | {fmt(rate, 0)} | {fmt(row['peak_rss_mib'], 1)} |")
    harness.print_commands(sorted(set(commands)), [])
    harness.write_json(args.json, {"rows": rows, "commands": commands})
    return 0


if __name__ == "__main__":
    sys.exit(main())
