"""The master's operator signals: SIGHUP (rolling restart with the configuration and the
app read again), SIGTTIN / SIGTTOU (one worker more or fewer), and the master's own start
line. Real binary, real signals; the app and the config file live in the test's own
directory so that a test can change them on disk. Every wait is on a condition (a log
line, a set of PIDs) with a generous limit; servers are stopped by PID."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import threading
import time

import conftest
from rawhttp import TIMESTAMP
from test_workers import READY_WORKER, alive, collect_pids, master_stats, ready_pids, wait_until

# The app the tests edit: its answer names the process, the app's version on disk and the
# root_path the server gave it. With a gate path, lifespan startup waits for that file
# (a rolling restart's replacement that stays starting for as long as a test needs).
APP = '''
import asyncio
import os

VERSION = {version!r}
GATE = {gate!r}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                while GATE and not os.path.exists(GATE):
                    await asyncio.sleep(0.01)
                await send({{"type": "lifespan.startup.complete"}})
            elif message["type"] == "lifespan.shutdown":
                await send({{"type": "lifespan.shutdown.complete"}})
                return
    body = f"{{os.getpid()}} {{VERSION}} {{scope['root_path']}}".encode()
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]}})
    await send({{"type": "http.response.body", "body": body}})
'''

BROKEN_APP = 'raise RuntimeError("roll_app broken on purpose")\n'


def write_app(directory, version: str, gate: str = "") -> None:
    (directory / "roll_app.py").write_text(APP.format(version=version, gate=gate))


def write_config(directory, *, workers: int = 2, release: str = "1", port: int = 0,
                 root_path: str = "") -> None:
    (directory / "narwhal.toml").write_text(
        f'host = "127.0.0.1"\nport = {port}\nworkers = {workers}\n'
        f'headers = ["x-release:{release}"]\nroot_path = "{root_path}"\n')


def start_from_config(tmp_path, workers: int = 2, *args: str, env: dict | None = None):
    """A master whose host, port and workers come from tmp_path/narwhal.toml (not from the
    command line, which would take precedence over the file)."""
    cmd = [conftest.NARWHAL_BIN, "roll_app:app", "--app-dir", str(tmp_path),
           "--config", str(tmp_path / "narwhal.toml"), *args]
    env = dict(os.environ, **(env or {}))
    env.pop("VIRTUAL_ENV", None)
    env.pop("NARWHAL_BIN", None)
    env.pop("NARWHAL_TEST_VENV", None)  # the tests' own variables, not server settings
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # the edited module is read from its source
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env)
    server = conftest.Server(proc, None, None)
    server._reader = threading.Thread(target=conftest._pump, args=(server, proc.stdout),
                                      daemon=True)
    server._reader.start()
    conftest._STARTED.append(server)  # the narwhal fixture stops it by PID
    m = server.wait_for_log(conftest.READY.pattern, 60)
    server.host, server.port = m.group("host"), int(m.group("port"))
    wait_until(lambda: len(ready_pids(server)) >= workers or proc.poll() is not None,
               f"{workers} workers ready", 60)
    assert proc.poll() is None, server.log()
    return server


def fetch(server) -> tuple[int, str, str, str | None]:
    """One request on a new connection: (pid, app version, root_path, x-release header)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200
        pid, version, root_path = (response.read().decode().split(" ") + [""])[:3]
        return int(pid), version, root_path, response.getheader("x-release")
    finally:
        conn.close()


def answers(server, wanted: int, limit: int = 3000) -> set[tuple]:
    """New connections until `wanted` different processes answered; their answers."""
    seen: dict[int, tuple] = {}
    for _ in range(limit):
        pid, *rest = fetch(server)
        seen[pid] = (pid, *rest)
        if len(seen) >= wanted:
            break
    return set(seen.values())


def rolls_done(server) -> int:
    return server.log().count("Rolling restart done")


def test_master_prints_the_running_line_once(narwhal, tmp_path):
    write_app(tmp_path, "1")
    write_config(tmp_path)
    server = start_from_config(tmp_path)
    log = server.log()
    assert log.count("narwhal running on") == 1, log
    running = re.search(rf"^{TIMESTAMP}INFO:     narwhal running on http://127\.0\.0\.1:"
                        rf"{server.port} \(Press CTRL\+C to quit\)$", log, re.M)
    assert running, log
    parent = log.index(f"Started parent process [{server.pid}]")
    assert running.start() < parent, log  # uvicorn's order: where, then the parent's PID
    for pid in ready_pids(server):
        assert f"Started server process [{pid}]" in log, log
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_sighup_rolls_every_worker_with_new_code_and_settings_and_no_failed_request(
        narwhal, tmp_path):
    """A reconnecting client loop runs through the whole roll: not one request fails.
    Before SIGHUP the app's source, a response header and root_path change on disk (the
    new workers serve them) and so does the port (reported, and the old one still
    served)."""
    write_app(tmp_path, "1")
    write_config(tmp_path)
    server = start_from_config(tmp_path)
    old = set(ready_pids(server))
    assert answers(server, 2) == {(pid, "1", "", "1") for pid in old}

    write_app(tmp_path, "2")
    write_config(tmp_path, release="2", port=1, root_path="/v2")
    server.signal(signal.SIGHUP)
    seen: list[tuple] = []
    end = time.monotonic() + 120  # a failure guard: the loop ends when the roll is done
    while time.monotonic() < end:
        seen.append(fetch(server))  # raises on any failed request
        if rolls_done(server):
            break
    log = server.log()
    assert rolls_done(server) == 1, log
    assert re.search(r"Setting port: 1 \(running: 0\) needs a full restart: the master keeps "
                     r"the running value", log), log
    assert re.search(r"Settings changed for the new workers: .*headers", log), log
    assert "Rolling restart of 2 workers: one at a time, new before old" in log, log
    steps = re.findall(r"Rolling restart (\d)/2: worker process \[(\d+)\] replaced by \[(\d+)\]",
                       log)
    assert [s for s, _, _ in steps] == ["1", "2"], log
    for _, before, after in steps:
        assert int(before) in old and int(after) not in old, log
        # New before old: the replacement was ready before the old worker drained.
        assert log.index(f"Worker process [{after}] is ready") < \
            log.index(f"Worker process [{before}] replaced by"), log
        # One at a time: a step begins once the previous old worker has stopped.
    assert log.index(f"Rolling restart 1/2: worker process [{steps[0][1]}] has stopped") < \
        log.index("Rolling restart 2/2: starting a replacement"), log
    new = {int(after) for _, _, after in steps}
    for pid in old:
        wait_until(lambda: not alive(pid), f"old worker {pid} gone")
    # The old port is still served, by the new workers only, with the new code and settings.
    assert answers(server, 2) == {(pid, "2", "/v2", "2") for pid in new}
    assert {pid for pid, *_ in seen} & new, "no request reached a new worker during the roll"
    stats = master_stats(server)
    assert sorted(w["pid"] for w in stats["workers"]) == sorted(new), stats
    assert stats["workers_target"] == 2, stats
    assert "failed during start-up" not in log and "died" not in log, log
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_sighup_keeps_the_precedence_of_the_command_line_and_the_environment(
        narwhal, tmp_path):
    """The file changes root_path and the header, but the command line sets root_path and
    the environment the headers: as at start, those win; the file's own change of a
    setting nobody else sets (timeout_keep_alive) is applied."""
    write_app(tmp_path, "1")
    write_config(tmp_path)
    server = start_from_config(tmp_path, 2, "--root-path", "/cli",
                               env={"NARWHAL_HEADERS": "x-release:env"})
    old = set(ready_pids(server))
    assert answers(server, 2) == {(pid, "1", "/cli", "env") for pid in old}
    write_config(tmp_path, release="2", root_path="/file")
    with open(tmp_path / "narwhal.toml", "a") as f:
        f.write("timeout_keep_alive = 7\n")
    server.signal(signal.SIGHUP)
    wait_until(lambda: rolls_done(server) == 1, "the roll", 120)
    assert re.search(r"Settings changed for the new workers: timeout_keep_alive\n", server.log()), \
        server.log()
    new = set(ready_pids(server)) - old
    assert answers(server, 2) == {(pid, "1", "/cli", "env") for pid in new}
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_sighup_with_a_config_that_no_longer_parses_keeps_settings_and_workers(
        narwhal, tmp_path):
    write_app(tmp_path, "1")
    write_config(tmp_path)
    server = start_from_config(tmp_path)
    old = set(ready_pids(server))
    (tmp_path / "narwhal.toml").write_text('port = "not a number"\n')
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"Configuration not reloaded, the workers keep their settings: "
                        r".*port: expected an integer")
    assert answers(server, 2) == {(pid, "1", "", "1") for pid in old}
    log = server.log()
    assert "Rolling restart of" not in log and "Started worker process" not in \
        log.split("Received SIGHUP")[1], log
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_sighup_with_a_broken_app_keeps_the_old_workers_and_the_master(narwhal, tmp_path):
    """The replacement fails to import: the roll stops at its first step, the old workers
    keep serving and the master keeps running (at start, the same failure stops it). Once
    the app is fixed, the next SIGHUP rolls."""
    write_app(tmp_path, "1")
    write_config(tmp_path)
    server = start_from_config(tmp_path)
    old = set(ready_pids(server))
    (tmp_path / "roll_app.py").write_text(BROKEN_APP)
    server.signal(signal.SIGHUP)
    failed = server.wait_for_log(
        r"Rolling restart aborted at 1/2: worker process \[(\d+)\] failed during start-up "
        r"\(exit status 1\); the running workers keep serving", 60)
    assert int(failed.group(1)) not in old
    assert "roll_app broken on purpose" in server.log()
    assert server.proc.poll() is None, server.log()
    assert answers(server, 2) == {(pid, "1", "", "1") for pid in old}
    assert all(alive(pid) for pid in old)

    write_app(tmp_path, "3")
    server.signal(signal.SIGHUP)
    wait_until(lambda: rolls_done(server) == 1, "a roll once the app is fixed", 120)
    new = set(ready_pids(server)) - old - {int(failed.group(1))}
    assert len(new) == 2, server.log()
    assert answers(server, 2) == {(pid, "3", "", "1") for pid in new}
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_sighups_during_a_roll_make_it_start_over_once(narwhal, tmp_path):
    """The first step's replacement waits in its lifespan startup; two more SIGHUPs arrive
    meanwhile. The step finishes, then one new roll replaces every worker (the one just
    started too): three replacements in all, one "done"."""
    gate = tmp_path / "gate"
    write_app(tmp_path, "1")
    write_config(tmp_path)
    server = start_from_config(tmp_path)
    old = set(ready_pids(server))
    write_app(tmp_path, "2", gate=str(gate))
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"Rolling restart 1/2: starting a replacement for worker process", 60)
    wait_until(lambda: server.log().count("Waiting for application startup") >= 3,
               "the replacement in its lifespan startup", 60)
    for _ in range(2):
        before = server.log().count("Rolling restart under way")
        server.signal(signal.SIGHUP)
        wait_until(lambda: server.log().count("Rolling restart under way") > before,
                   "the SIGHUP during the roll acknowledged")
    assert server.log().count(
        "Rolling restart under way: it starts over after its current step") == 2
    gate.write_text("open")
    wait_until(lambda: rolls_done(server) == 1, "the roll, started over, done", 120)
    log = server.log()
    replaced = re.findall(r"Rolling restart (\d)/2: worker process \[(\d+)\] replaced by "
                          r"\[(\d+)\]", log)
    assert [s for s, _, _ in replaced] == ["1", "1", "2"], log
    # The second roll replaced the first step's new worker as well.
    assert replaced[1][1] == replaced[0][2], log
    final = {int(new) for _, _, new in replaced[1:]}
    assert not final & old
    assert {pid for pid, *_ in answers(server, 2)} == final
    assert rolls_done(server) == 1
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_workers_changed_in_the_config_file_is_a_new_target(narwhal, tmp_path):
    write_app(tmp_path, "1")
    write_config(tmp_path, workers=2)
    server = start_from_config(tmp_path)
    write_config(tmp_path, workers=1)
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"workers changed in the configuration: 1 workers \(one fewer\)")
    wait_until(lambda: rolls_done(server) == 1, "the roll of the one position left", 120)
    assert "Rolling restart of 1 workers" in server.log(), server.log()
    (removed,) = re.findall(r"Worker process \[(\d+)\] is no longer needed", server.log())
    wait_until(lambda: f"Worker process [{removed}] stopped\n" in server.log(), "it drained")
    stats = master_stats(server)
    assert stats["workers_target"] == 1 and len(stats["workers"]) == 1, stats
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_sigttin_adds_a_worker_and_sigttou_removes_one_down_to_one(narwhal, tmp_path):
    write_app(tmp_path, "1")
    write_config(tmp_path, workers=2)
    server = start_from_config(tmp_path)
    first = set(ready_pids(server))

    server.signal(signal.SIGTTIN)
    server.wait_for_log(r"Received SIGTTIN: 3 workers \(one more\)")
    wait_until(lambda: len(ready_pids(server)) >= 3, "a third worker ready", 60)
    three = set(ready_pids(server))
    assert {pid for pid, *_ in answers(server, 3)} == three
    stats = master_stats(server)
    assert stats["workers_target"] == 3, stats
    assert sorted(w["pid"] for w in stats["workers"]) == sorted(three), stats

    for count in (2, 1):
        server.signal(signal.SIGTTOU)
        server.wait_for_log(rf"Received SIGTTOU: {count} workers \(one fewer\)")
    server.signal(signal.SIGTTOU)
    server.wait_for_log(r"Received SIGTTOU: already 1 worker, the fewest there can be")
    stopped = [int(p) for p in
               re.findall(r"Worker process \[(\d+)\] is no longer needed", server.log())]
    assert len(stopped) == 2 and set(stopped) <= three, server.log()
    for pid in stopped:
        wait_until(lambda: f"Worker process [{pid}] stopped\n" in server.log(), f"{pid} drained")
        wait_until(lambda: not alive(pid), f"{pid} gone")
    (survivor,) = three - set(stopped)
    assert {pid for pid, *_ in answers(server, 1, limit=20)} == {survivor}
    stats = master_stats(server)
    assert stats["workers_target"] == 1, stats
    assert [w["pid"] for w in stats["workers"]] == [survivor], stats
    # Not respawned: one start per worker ever seen. And no roll was involved.
    assert server.log().count("Started worker process") == 3, server.log()
    assert "Rolling restart" not in server.log(), server.log()
    assert first < three
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_a_sigttin_worker_that_fails_to_start_is_not_added(narwhal, tmp_path):
    write_app(tmp_path, "1")
    write_config(tmp_path, workers=2)
    server = start_from_config(tmp_path)
    old = set(ready_pids(server))
    (tmp_path / "roll_app.py").write_text(BROKEN_APP)
    server.signal(signal.SIGTTIN)
    server.wait_for_log(r"Worker process \[\d+\] failed during start-up \(exit status 1\): not "
                        r"added, 2 workers", 60)
    assert server.proc.poll() is None, server.log()
    assert {pid for pid, *_ in answers(server, 2)} == old
    stats = master_stats(server)
    assert stats["workers_target"] == 2, stats
    assert sorted(w["pid"] for w in stats["workers"]) == sorted(old), stats
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_sighup_to_a_single_process_ends_it_as_uvicorns_does(narwhal):
    """Without --workers there is no master to roll workers: SIGHUP keeps its default
    action (as in uvicorn's single process), the process ends at once."""
    server = narwhal("pid_app:app")
    server.signal(signal.SIGHUP)
    assert server.proc.wait(60) == -signal.SIGHUP
