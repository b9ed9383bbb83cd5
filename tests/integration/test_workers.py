"""--workers: a master process that binds the listener once and supervises forked
workers. Real binary, real signals; processes are identified by PID, and every wait is
on a condition (a log line, a PID appearing or disappearing) with a generous limit."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

import conftest
from conftest import run_cli

LISTENING = r"narwhal running on http://(?P<host>[^:]+):(?P<port>\d+)"
READY_WORKER = re.compile(r"Worker process \[(\d+)\] is ready")


def alive(pid: int) -> bool:
    """Running, or at least not yet a zombie (a zombie has finished all it will do)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_until(predicate, what: str, limit: float = 30.0) -> None:
    """A failure guard, not a timing: `predicate` is polled until it holds."""
    end = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"not within {limit}s: {what}")
        time.sleep(0.02)


def ready_pids(server) -> list[int]:
    return [int(m.group(1)) for m in READY_WORKER.finditer(server.log())]


def wait_workers(server, count: int, timeout: float = 60.0) -> list[int]:
    """The pids of the workers that said they are ready, once there are `count` (fails if
    the master exits first)."""
    deadline = time.monotonic() + timeout
    while len(ready_pids(server)) < count:
        assert time.monotonic() < deadline and server.proc.poll() is None, server.log()
        time.sleep(0.05)  # poll interval
    return ready_pids(server)


def start_master(narwhal, workers: int | str = 2, *args: str, app: str = "pid_app:app",
                 env: dict[str, str] | None = None):
    server = narwhal(app, "--workers", str(workers), *args, wait=False, env=env)
    m = server.wait_for_log(LISTENING, 60)
    server.host, server.port = m.group("host"), int(m.group("port"))
    if workers == "auto":
        workers = len(os.sched_getaffinity(0))  # the server inherits the test's affinity
    wait_until(lambda: len(ready_pids(server)) >= workers or server.proc.poll() is not None,
               f"{workers} workers ready", 60)
    assert server.proc.poll() is None, server.log()
    return server


def master_stats(server) -> dict:
    """Asks the master for its stats line (SIGUSR1) and returns the new line's fields."""
    rx = re.compile(r"narwhal workers stats: (\{.*\})")
    before = len(rx.findall(server.log()))
    server.signal(signal.SIGUSR1)
    wait_until(lambda: len(rx.findall(server.log())) > before, "the master's stats line")
    return json.loads(rx.findall(server.log())[before])


def get_pid(server, conn: http.client.HTTPConnection | None = None) -> int:
    own = conn is None
    conn = conn or http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200
        return int(response.read())
    finally:
        if own:
            conn.close()


def collect_pids(server, wanted: set[int] | int, limit: int = 3000) -> set[int]:
    """New connections until the wanted PIDs (or that many different ones) answered."""
    seen: set[int] = set()
    for _ in range(limit):
        seen.add(get_pid(server))
        if (isinstance(wanted, int) and len(seen) >= wanted) or (
                isinstance(wanted, set) and wanted <= seen):
            break
    return seen


def test_requests_reach_two_worker_processes_and_sigterm_stops_all(narwhal):
    server = start_master(narwhal, 2)
    workers = set(ready_pids(server))
    assert len(workers) == 2 and server.pid not in workers
    assert f"Started parent process [{server.pid}]" in server.log()
    for pid in workers:
        assert f"Started server process [{pid}]" in server.log()
    assert collect_pids(server, workers) == workers

    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()
    for pid in workers:
        wait_until(lambda: not alive(pid), f"worker {pid} gone after the master's exit")
    assert f"Worker process [{min(workers)}] stopped" in server.log()


def test_master_never_starts_python(narwhal):
    """libpython may be linked statically (Debian's build does: libpython3.11.a), so its
    code is in every narwhal process and a missing libpython mapping proves nothing alone.
    What a started interpreter leaves behind and the master must not show: standard
    library extension modules mapped (every worker imports some, asyncio's at least), and
    the tens of MB of a started CPython. The master is also single-threaded (it forks)."""
    server = start_master(narwhal, 2)
    workers = ready_pids(server)

    def facts(pid: int) -> tuple[int, str]:
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
        rss_kb = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))
        threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
        with open(f"/proc/{pid}/maps") as f:
            return rss_kb, threads, f.read()

    master_rss, master_threads, master_maps = facts(server.pid)
    worker_rss, worker_threads, worker_maps = facts(workers[0])
    assert master_threads == 1 and worker_threads > 1
    # Where libpython is linked statically (Debian 12) the master maps no libpython at all.
    # Where only a shared one exists (Debian 13's static library is unusable, see the
    # README's platform table) it is a load-time dependency of the one executable, so the
    # master maps it too, untouched: the checks below are what prove it never started.
    if not re.search(r"libpython\S*\.so", worker_maps):
        assert not re.search(r"libpython\S*\.so", master_maps), master_maps
    # Any started interpreter imports C extension modules from the standard library
    # (the worker's maps show them); the master's never do.
    assert re.search(r"/python3[.\d]*/lib-dynload/|\.cpython-\d+", worker_maps), worker_maps
    assert not re.search(r"/python3[.\d]*/lib-dynload/|\.cpython-\d+", master_maps), master_maps
    # A started CPython with its stdlib imports takes tens of MB (the worker); the master
    # stays a small fraction of that. A sanitizer runtime's own tens of MB (shadow memory,
    # allocator) in every process make the sizes meaningless there.
    if not re.search(r"lib[a-z]*san\S*\.so", master_maps):
        assert master_rss < 30 * 1024 and master_rss * 2 < worker_rss, (master_rss, worker_rss)


def test_kill_9_of_a_worker_respawns_it_and_only_its_connections_fail(narwhal):
    # Idle keep-alive connections must outlive the test's steps on a busy machine.
    server = start_master(narwhal, 2, "--timeout-keep-alive", "300")
    workers = set(ready_pids(server))
    # Persistent connections, each learning which worker holds it.
    conns: list[tuple[http.client.HTTPConnection, int]] = []
    for _ in range(3000):
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        conns.append((conn, get_pid(server, conn)))
        if {pid for _, pid in conns} == workers and len(conns) >= 8:
            break
    assert {pid for _, pid in conns} == workers
    victim = min(workers)
    survivor = max(workers)

    os.kill(victim, signal.SIGKILL)
    server.wait_for_log(rf"Worker process \[{victim}\] died \(signal SIGKILL\)")
    try:
        for conn, pid in conns:
            if pid == victim:
                with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
                    get_pid(server, conn)
            else:
                assert get_pid(server, conn) == survivor
    finally:
        for conn, _ in conns:
            conn.close()

    # A bounded loop of new connections: none fails while the worker is replaced, and the
    # new worker's PID shows up.
    wait_until(lambda: len(ready_pids(server)) >= 3, "a third worker ready", 60)
    newcomer = ready_pids(server)[2]
    assert newcomer not in workers and alive(newcomer)
    assert collect_pids(server, {survivor, newcomer}) == {survivor, newcomer}
    assert not alive(victim)
    assert f"Worker process [{victim}] died (signal SIGKILL); starting a new one in 0.1 s" \
        in server.log()

    # Its replacement dying soon after: the next one waits twice as long (backoff).
    os.kill(newcomer, signal.SIGKILL)
    server.wait_for_log(rf"Worker process \[{newcomer}\] died \(signal SIGKILL\); "
                        r"starting a new one in 0\.2 s")
    wait_until(lambda: len(ready_pids(server)) >= 4, "a fourth worker ready", 60)
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_killed_master_takes_its_workers_along(narwhal):
    server = start_master(narwhal, 2)
    workers = ready_pids(server)
    os.kill(server.pid, signal.SIGKILL)
    server.proc.wait(30)
    for pid in workers:
        wait_until(lambda: not alive(pid), f"worker {pid} gone after SIGKILL of its master")


def test_sigint_to_the_process_group_stops_each_worker_once():
    """A terminal's Ctrl-C signals the whole foreground process group. The master runs in a
    group of its own here, as under a shell; its workers have their own group, so the
    master's forwarded stop is the only one each sees: one graceful stop, exit 0."""
    cmd = [conftest.NARWHAL_BIN, "pid_app:app", "--app-dir", str(conftest.APPS_DIR),
           "--host", "127.0.0.1", "--port", "0", "--workers", "2"]
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    env.pop("NARWHAL_BIN", None)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, process_group=0)
    server = conftest.Server(proc, None, None)
    server._reader = threading.Thread(target=conftest._pump, args=(server, proc.stdout), daemon=True)
    server._reader.start()
    try:
        wait_until(lambda: len(ready_pids(server)) >= 2 or proc.poll() is not None, "2 workers", 60)
        workers = ready_pids(server)
        assert len(workers) == 2, server.log()
        for pid in workers:
            assert os.getpgid(pid) != proc.pid
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(60) == 0, server.log()
        for pid in workers:
            wait_until(lambda: not alive(pid), f"worker {pid} gone")
        log = server.log()
        assert "Second stop signal" not in log and "Third stop signal" not in log, log
        assert log.count("Worker process [") >= 4 and "(SIGINT)" in log, log
    finally:
        server.stop()


def test_import_error_stops_the_master_without_a_crash_loop():
    r = run_cli("broken_import:app", "--app-dir", os.path.join(os.path.dirname(__file__), "apps"),
                "--host", "127.0.0.1", "--port", "0", "--workers", "2", timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "broken_import exploded on purpose" in out
    assert re.search(r"Worker process \[\d+\] failed during start-up \(exit status 1\)", out), out
    # Two workers started, none respawned.
    assert len(re.findall(r"Started worker process", out)) == 2, out


def test_workers_from_web_concurrency_and_reuse_port(narwhal):
    server = narwhal("pid_app:app", "--reuse-port", env={"WEB_CONCURRENCY": "2"}, wait=False)
    m = server.wait_for_log(r"Workers listen on http://(?P<host>[^:]+):(?P<port>\d+) with SO_REUSEPORT", 60)
    server.host, server.port = m.group("host"), int(m.group("port"))
    wait_until(lambda: len(ready_pids(server)) >= 2 or server.proc.poll() is not None, "2 workers", 60)
    assert server.log().count("WEB_CONCURRENCY=2: honoured as --workers") == 1, server.log()
    workers = set(ready_pids(server))
    assert collect_pids(server, workers) == workers
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_lifespan_startup_failure_stops_the_master_with_its_status():
    r = run_cli("lifespan_apps:failing_startup_app", "--app-dir", str(conftest.APPS_DIR),
                "--host", "127.0.0.1", "--port", "0", "--workers", "2", timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 3, out
    assert "database unreachable (on purpose)" in out
    assert re.search(r"Worker process \[\d+\] failed during start-up \(exit status 3\)", out), out
    assert len(re.findall(r"Started worker process", out)) == 2, out


@pytest.mark.parametrize("reuse_port", [False, True])
def test_taken_port_stops_the_master_before_any_worker(reuse_port):
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run_cli("pid_app:app", "--app-dir", str(conftest.APPS_DIR), "--host", "127.0.0.1",
                    "--port", str(port), "--workers", "2",
                    *(["--reuse-port"] if reuse_port else []), timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert f"could not bind on 127.0.0.1:{port}" in out, out
    assert "Started worker process" not in out, out


def test_sigusr1_to_the_master_reaches_every_worker(narwhal):
    server = start_master(narwhal, 2)
    server.signal(signal.SIGUSR1)
    wait_until(lambda: server.log().count("narwhal stats:") >= 2 or server.proc.poll() is not None,
               "a stats line from each worker")
    assert server.proc.poll() is None, server.log()
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_second_stop_signal_kills_the_workers_at_once(narwhal, tmp_path):
    server = start_master(narwhal, 1, app="slow_app:app")
    worker = ready_pids(server)[0]
    gate = tmp_path / "never"  # the request waits for a file no one creates
    errors: list[BaseException] = []

    def request():
        try:
            conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
            conn.request("GET", f"/sleep?gate={gate}&tag=held")
            conn.getresponse().read()
        except BaseException as e:  # the connection is cut: that is the point
            errors.append(e)

    client = threading.Thread(target=request, daemon=True)
    client.start()
    server.wait_for_log(r"slow_app: sleeping .* tag=held")
    server.signal(signal.SIGTERM)
    server.wait_for_log(r"Waiting for in-flight requests to finish")
    server.signal(signal.SIGTERM)
    assert server.proc.wait(60) == 1, server.log()
    client.join(60)
    wait_until(lambda: not alive(worker), f"worker {worker} gone")
    log = server.log()
    assert "Second stop signal: killing the workers without waiting." in log, log
    assert f"Worker process [{worker}] stopped with signal SIGKILL" in log, log
    assert "woke tag=held" not in log and errors, log


def test_a_worker_that_does_not_stop_is_killed_after_the_graceful_bound(narwhal):
    server = start_master(narwhal, 1, "--timeout-graceful-shutdown", "0",
                          "--timeout-cancel-grace", "0.1")
    worker = ready_pids(server)[0]
    os.kill(worker, signal.SIGSTOP)  # cannot act on SIGTERM: only SIGKILL ends it
    try:
        server.signal(signal.SIGTERM)
        assert server.proc.wait(60) == 1, server.log()
    finally:
        if alive(worker):
            os.kill(worker, signal.SIGKILL)
    log = server.log()
    assert "Workers still running after the graceful timeout: killing them" in log, log
    assert f"Worker process [{worker}] stopped with signal SIGKILL" in log, log
    wait_until(lambda: not alive(worker), f"worker {worker} gone")


def test_workers_auto_is_one_per_usable_cpu(narwhal):
    cpus = len(os.sched_getaffinity(0))
    server = start_master(narwhal, "auto")
    assert len(ready_pids(server)) == cpus, server.log()
    assert server.log().count("Started worker process") == cpus, server.log()
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def _get_pid_over_unix(path: str) -> int:
    import socket
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data
    return int(body)


def test_workers_share_a_unix_socket_the_master_removes(narwhal, tmp_path):
    path = str(tmp_path / "n.sock")
    server = narwhal("pid_app:app", "--uds", path, "--workers", "2", wait=False)
    server.wait_for_log(rf"narwhal running on unix socket {re.escape(path)}", 60)
    wait_until(lambda: len(ready_pids(server)) >= 2 or server.proc.poll() is not None, "2 workers", 60)
    workers = set(ready_pids(server))
    assert len(workers) == 2, server.log()
    seen: set[int] = set()
    for _ in range(3000):
        seen.add(_get_pid_over_unix(path))
        if seen == workers:
            break
    assert seen == workers
    # A worker stopping (here: replaced after kill -9) leaves the socket file alone.
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(ready_pids(server)) >= 3, "a replacement ready", 60)
    assert os.path.exists(path)
    assert _get_pid_over_unix(path) in (set(ready_pids(server)) - {victim})
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()
    assert not os.path.exists(path)


def test_sigterm_while_workers_start_is_a_clean_stop(narwhal, tmp_path):
    gate = tmp_path / "never"  # lifespan startup waits for it: the workers stay starting
    server = narwhal("pid_app:app", "--workers", "2", env={"PID_APP_START_GATE": str(gate)},
                     wait=False)
    wait_until(lambda: len(re.findall(r"Waiting for application startup", server.log())) >= 2
               or server.proc.poll() is not None, "both workers in lifespan startup", 60)
    workers = [int(p) for p in re.findall(r"Started worker process \[(\d+)\]", server.log())]
    assert len(workers) == 2 and not ready_pids(server), server.log()
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()
    for pid in workers:
        wait_until(lambda: not alive(pid), f"worker {pid} gone")
        assert f"Worker process [{pid}] stopped" in server.log()


def test_single_process_stops_after_its_request_limit(narwhal):
    """Without --workers, --limit-max-requests ends the process as uvicorn's does: the
    limit (plus its jitter, drawn once) is logged, the process stops as on a first
    SIGTERM and exits 0. Every request up to the limit is answered."""
    server = narwhal("pid_app:app", "--limit-max-requests", "3",
                     "--limit-max-requests-jitter", "2")
    limit_line = re.compile(r"Maximum request limit of (\d+) exceeded\. Terminating process\.")
    answered = 0
    for _ in range(50):  # far past any limit the flags allow
        try:
            assert get_pid(server) == server.pid
        except (ConnectionError, http.client.HTTPException, OSError):
            break  # the listener is closed: the process is stopping
        answered += 1
        if server.proc.poll() is not None:
            break
    assert server.proc.wait(60) == 0, server.log()
    m = limit_line.search(server.log())
    assert m, server.log()
    limit = int(m.group(1))
    assert 3 <= limit <= 5, limit
    # Requests that arrived while it was stopping may have been answered too; none before
    # the limit failed.
    assert answered >= limit, (answered, server.log())
    assert server.log().count("Maximum request limit") == 1, server.log()
    assert "Finished server process" in server.log()


@pytest.mark.parametrize("watchdog", ["0.1", "0"])
def test_a_hung_worker_is_reported_killed_and_replaced(narwhal, watchdog):
    """A loop blocked past --timeout-worker-healthcheck: the worker's watchdog has logged
    the stack, the master reports the worker, SIGTERMs it (a blocked loop cannot drain),
    SIGKILLs it one more timeout later and starts a new one. With the watchdog off the
    loop still beats for the master: the worker is replaced all the same."""
    server = start_master(narwhal, 1, "--timeout-worker-healthcheck", "1",
                          "--watchdog-threshold", watchdog)
    worker = ready_pids(server)[0]

    def block():
        try:
            conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
            conn.request("GET", "/block")
            conn.getresponse().read()
        except (ConnectionError, http.client.HTTPException, OSError):
            pass  # the worker dies under it: that is the point

    client = threading.Thread(target=block, daemon=True)
    client.start()
    server.wait_for_log(rf"Worker process \[{worker}\] is hung: its event loop 0 has not "
                        r"turned for \d+\.\d s", 60)
    server.wait_for_log(rf"Worker process \[{worker}\] did not stop after SIGTERM: killing it", 60)
    server.wait_for_log(rf"Worker process \[{worker}\] died \(signal SIGKILL\)", 60)
    wait_until(lambda: len(ready_pids(server)) >= 2, "a replacement ready", 60)
    newcomer = ready_pids(server)[1]
    assert newcomer != worker and not alive(worker)
    assert get_pid(server) == newcomer
    client.join(60)
    log = server.log()
    hung_at = log.index(f"Worker process [{worker}] is hung")
    if watchdog != "0":
        # The stack, from the worker's own watchdog, comes before the master's report.
        stack_at = log.find("block_the_loop_forever")
        assert 0 <= stack_at < hung_at, log
    stats = master_stats(server)
    assert stats["workers_hung"] == 1 and stats["workers_killed"] == 1, stats
    assert [w["pid"] for w in stats["workers"]] == [newcomer], stats
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_max_requests_recycles_workers_new_before_old_without_a_failed_request(narwhal):
    """A client loop that opens a new connection per request (as a reconnecting client
    does) while each worker is recycled after 20 (+ up to 5) requests: the successor is
    ready before the old worker stops accepting, so not one request fails; the PIDs that
    answer change."""
    server = start_master(narwhal, 2, "--limit-max-requests", "20",
                          "--limit-max-requests-jitter", "5")
    first = set(ready_pids(server))
    answered: list[int] = []
    # Bounded by a generous time, not a count: on an idle machine thousands of requests
    # fit in the time a successor takes to start.
    end = time.monotonic() + 120
    while time.monotonic() < end:
        answered.append(get_pid(server))  # raises on any failed request
        if server.log().count("Worker process [") and \
                len(re.findall(r"replaced by \[\d+\]: draining it", server.log())) >= 4:
            break
    log = server.log()
    replaced = re.findall(r"Worker process \[(\d+)\] replaced by \[(\d+)\]: draining it", log)
    assert len(replaced) >= 4, log
    assert set(answered) - first, "no request reached a successor"
    for old, new in replaced:
        assert re.search(rf"Worker process \[{old}\] served \d+ requests "
                         rf"\(--limit-max-requests 2[0-5]\): starting its replacement", log), log
        # New before old: the successor was ready before its predecessor was told to drain.
        assert log.index(f"Worker process [{new}] is ready") < \
            log.index(f"Worker process [{old}] replaced by"), log
    for old, _ in replaced[:2]:
        wait_until(lambda: f"Worker process [{old}] stopped\n" in server.log(), f"{old} drained")
        wait_until(lambda: not alive(int(old)), f"{old} gone")
    assert "failed during start-up" not in log and "died" not in log, log
    # Requests of the recycled workers are kept in the total (a running worker's count
    # reaches the table at its next heartbeat: asked again until it is there).
    stats = master_stats(server)
    wait_until(lambda: master_stats(server)["requests"] >= len(answered), "every request counted")
    assert master_stats(server)["workers_recycled"] >= 4, stats
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()
