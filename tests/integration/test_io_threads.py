"""--io-threads: which thread does a worker's network I/O.

N >= 1 runs N threads named `narwhal-io` beside the interpreter's; 0 runs none, the
interpreter's thread does the I/O between its event-loop iterations; auto picks 0 when the
processes fill the CPUs the server may use (one interpreter each), else 1. The mode is
read from the threads' names in /proc, the CPUs from the affinity mask the server
inherits from the test. The whole integration suite also runs with --io-threads 0
(`make integration-inline`); this file covers the choice itself and what only the inline
mode has to get right.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
from pathlib import Path

import pytest

from conftest import run_cli
from test_workers import ready_pids, start_master, wait_until

APP = "pid_app:app"
# The default, also when the suite runs with NARWHAL_IO_THREADS=0 (make integration-inline):
# an empty variable counts as unset.
AUTO = {"NARWHAL_IO_THREADS": ""}


def io_threads(pid: int) -> int:
    """The process's threads named narwhal-io."""
    count = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            if (task / "comm").read_text().strip() == "narwhal-io":
                count += 1
    return count


@contextlib.contextmanager
def cpus(n: int):
    """The servers started inside inherit an affinity mask of `n` of this thread's CPUs."""
    before = os.sched_getaffinity(0)
    if len(before) < n:
        pytest.skip(f"needs {n} usable CPUs, this machine lets the tests use {len(before)}")
    os.sched_setaffinity(0, sorted(before)[:n])
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def get(server, path: str = "/") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


@pytest.mark.parametrize("count", ["0", "1", "3"])
def test_explicit_count_is_the_number_of_io_threads(narwhal, count):
    server = narwhal(APP, "--io-threads", count)
    assert io_threads(server.proc.pid) == int(count)
    assert get(server)[0] == 200


def test_auto_single_process_inline_only_without_a_free_cpu(narwhal):
    with cpus(1):
        one_cpu = narwhal(APP, env=AUTO)
    assert io_threads(one_cpu.proc.pid) == 0
    assert get(one_cpu) == (200, str(one_cpu.proc.pid).encode())
    with cpus(2):
        two_cpus = narwhal(APP, env=AUTO)
    assert io_threads(two_cpus.proc.pid) == 1


def test_auto_workers_inline_once_they_fill_the_cpus(narwhal):
    with cpus(2):
        one = start_master(narwhal, 1, env=AUTO)
        two = start_master(narwhal, 2, env=AUTO)
    [pid] = ready_pids(one)
    assert io_threads(pid) == 1  # one worker, two CPUs: its I/O thread has a core
    pids = ready_pids(two)
    assert len(pids) == 2
    assert [io_threads(p) for p in pids] == [0, 0]
    seen = set()
    wait_until(lambda: seen.add(int(get(two)[1])) or seen == set(pids),
               "requests served by both inline workers")
    # --io-threads given: kept as given, under a master too.
    with cpus(2):
        forced = start_master(narwhal, 2, "--io-threads", "1")
    assert [io_threads(p) for p in ready_pids(forced)] == [1, 1]


def test_inline_refused_with_several_interpreters():
    done = run_cli("--io-threads", "0", "--interpreters", "2", APP)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--io-threads 0 runs the network I/O on the interpreter's thread" in done.stdout + done.stderr


def test_inline_finishes_queued_responses_after_the_loop_stopped(narwhal):
    """Bytes still queued on the network side when the event loop has stopped are written
    out by the interpreter's thread itself before the process exits. The app hands over a
    12 MiB response at once (under a 16 MiB send window); the client reads nothing until
    the shutdown after SIGTERM has completed, so what the socket buffers cannot hold is
    still queued when the loop stops."""
    size, pieces, window = 12 * 1024 * 1024, 48, 16 * 1024 * 1024
    server = narwhal("raw_apps:router", "--io-threads", "0", "--send-high-water", str(window))
    sock = socket.create_connection((server.host, server.port), timeout=30)
    sock.sendall(f"GET /cl?declared={size}&pieces={pieces} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        assert chunk, data
        data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data
    server.signal(signal.SIGTERM)
    server.wait_for_log(r"Application shutdown complete")
    chunks, got = [], 0
    while got < size:
        chunk = sock.recv(1 << 16)
        assert chunk, f"connection closed after {got} of {size} bytes:\n{server.log()}"
        chunks.append(chunk)
        got += len(chunk)
    sock.close()
    assert b"".join(chunks) == bytes(ord("a") + i % 26 for i in range(size))
    assert server.proc.wait(30) == 0, server.log()
