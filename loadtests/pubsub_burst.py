#!/usr/bin/python3
"""Server CPU per delivered publication for a burst: N subscribed WebSockets, one HTTP
POST that publishes M messages at once (apps/../tests/integration/apps/pubsub_app.py's
/publish?count=M), all M read by every socket. Compares narwhal binaries (e.g. before and
after a change), interleaved: round 1 = each binary once, round 2 = again, ...; medians.

The server's CPU is utime + stime from /proc for the burst only (after the sockets are
connected and subscribed), divided by N x M deliveries. Clients: the `websockets`
package in this process. No timing is a pass/fail check anywhere.

    /usr/bin/python3 loadtests/pubsub_burst.py --bins OLD,build/narwhal
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import urllib.request

import websockets

from harness import REPO, cpu_delta_seconds, tree_cpu

APPS = REPO / "tests" / "integration" / "apps"


async def burst_cost(binary: str, args: argparse.Namespace) -> list[float]:
    """µs of server CPU per delivery, one value per burst."""
    proc = subprocess.Popen(
        [binary, "pubsub_app:app", "--app-dir", str(APPS), "--host", "127.0.0.1", "--port", "0",
         "--no-access-log", "--no-ws-per-message-deflate",
         "--pubsub-max-queue", str(max(1024, args.messages))],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = None
        for line in proc.stdout:
            m = re.search(r"running on http://127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        if port is None:
            sys.exit(f"{binary} did not start")
        socks = [await websockets.connect(f"ws://127.0.0.1:{port}/ws?topics=t&ready=1",
                                          max_size=None, compression=None)
                 for _ in range(args.sockets)]
        for ws in socks:
            assert await ws.recv() == "ready"
        body = b"x" * (args.size - 8)  # the app appends "-<i>"
        url = f"http://127.0.0.1:{port}/publish?topic=t&count={args.messages}"
        costs = []
        for _ in range(args.bursts):
            before = tree_cpu(proc.pid)
            await asyncio.to_thread(
                lambda: urllib.request.urlopen(urllib.request.Request(url, data=body)).read())

            async def drain(ws):
                for _ in range(args.messages):
                    await ws.recv()

            await asyncio.gather(*(drain(ws) for ws in socks))
            cpu = cpu_delta_seconds(before, tree_cpu(proc.pid))
            costs.append(cpu / (args.sockets * args.messages) * 1e6)
        for ws in socks:
            await ws.close()
        return costs
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bins", required=True, help="comma-separated narwhal binaries")
    p.add_argument("--sockets", type=int, default=1000)
    p.add_argument("--messages", type=int, default=100, help="publications per burst")
    p.add_argument("--size", type=int, default=1024, help="bytes per publication")
    p.add_argument("--bursts", type=int, default=3, help="bursts per server start")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    bins = args.bins.split(",")
    results: dict[str, list[float]] = {b: [] for b in bins}
    for r in range(args.rounds):
        for b in bins[r % len(bins):] + bins[:r % len(bins)]:
            results[b] += asyncio.run(burst_cost(b, args))
    print(f"{args.sockets} sockets, bursts of {args.messages} x {args.size} B; "
          f"server CPU µs per delivery, median of {args.rounds * args.bursts} bursts:")
    for b, costs in results.items():
        print(f"  {b}: {statistics.median(costs):.2f} (min {min(costs):.2f}, max {max(costs):.2f})")


if __name__ == "__main__":
    main()
