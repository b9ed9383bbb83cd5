"""--timeout-worker-startup: the master's bound on a worker's start-up (app import plus
lifespan startup). A worker not ready in time is logged, stopped (SIGTERM, SIGKILL after
the grace) and counted, then treated as failing to start wherever it was started: at the
master's start, in a rolling restart, for SIGTTIN, as a recycling successor. Real binary,
real signals; the apps wait in their lifespan startup for a file no one creates. Every
wait is on a condition with a generous limit; servers are stopped by PID."""

from __future__ import annotations

import re
import signal
import time

from test_workers import alive, master_stats, ready_pids, wait_until
from test_workers_signals import BROKEN_APP, answers, start_from_config, write_app, write_config

TIMED_OUT = r"Worker process \[(\d+)\] did not become ready within 2 s: still starting after " \
            r"\d+\.\d s \(--timeout-worker-startup\); stopping it"

# Ignores SIGTERM from its import on, then never finishes its lifespan startup: only
# SIGKILL ends it.
STUBBORN_APP = '''
import signal
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)


async def app(scope, receive, send):
    assert scope["type"] == "lifespan"
    await receive()
    while True:
        time.sleep(0.05)
'''


def started_workers(server) -> list[int]:
    return [int(p) for p in re.findall(r"Started worker process \[(\d+)\]", server.log())]


def test_a_worker_stuck_in_lifespan_startup_stops_the_master(narwhal, tmp_path):
    server = narwhal("pid_app:app", "--workers", "1", "--timeout-worker-startup", "2",
                     env={"PID_APP_START_GATE": str(tmp_path / "never")}, wait=False)
    assert server.proc.wait(60) == 1, server.log()
    log = server.log()
    (worker,) = started_workers(server)
    assert "Waiting for application startup" in log, log
    m = re.search(TIMED_OUT, log)
    assert m and int(m.group(1)) == worker, log
    assert f"Worker process [{worker}] failed during start-up (did not become ready within " \
           f"2 s, then signal SIGTERM): stopping" in log, log
    assert not ready_pids(server), log
    wait_until(lambda: not alive(worker), f"worker {worker} gone")


def test_a_stuck_worker_that_ignores_sigterm_is_killed_after_the_grace(narwhal, tmp_path):
    (tmp_path / "stubborn_app.py").write_text(STUBBORN_APP)
    server = narwhal("stubborn_app:app", "--workers", "1", "--timeout-worker-startup", "2",
                     "--timeout-worker-healthcheck", "1", app_dir=tmp_path, wait=False)
    assert server.proc.wait(60) == 1, server.log()
    (worker,) = started_workers(server)
    log = server.log()
    assert re.search(TIMED_OUT, log), log
    assert f"Worker process [{worker}] did not stop after SIGTERM: killing it" in log, log
    assert f"Worker process [{worker}] failed during start-up (did not become ready within " \
           f"2 s, then signal SIGKILL): stopping" in log, log
    wait_until(lambda: not alive(worker), f"worker {worker} gone")


def test_timeout_0_waits_for_a_starting_worker(narwhal, tmp_path):
    """With the bound off, a worker still starting well past a short bound is still
    waited for: the master reports it as starting and has stopped nothing."""
    server = narwhal("pid_app:app", "--workers", "1", "--timeout-worker-startup", "0",
                     env={"PID_APP_START_GATE": str(tmp_path / "never")}, wait=False)
    server.wait_for_log(r"Waiting for application startup", 60)
    (worker,) = started_workers(server)
    since = time.monotonic()
    # Past what a 2 s bound (and the master's check a quarter of it later) would allow;
    # the check below is on the state the master reports, not on this wait.
    wait_until(lambda: time.monotonic() - since > 4 or server.proc.poll() is not None,
               "a few seconds of start-up")
    assert server.proc.poll() is None, server.log()
    stats = master_stats(server)
    assert [(w["pid"], w["state"]) for w in stats["workers"]] == [(worker, "starting")], stats
    assert stats["workers_start_timeouts"] == 0, stats
    assert "did not become ready" not in server.log(), server.log()
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()
    wait_until(lambda: not alive(worker), f"worker {worker} gone")


def hang_next_starts(tmp_path, workers: int) -> None:
    """From now on the app's lifespan startup never ends, and the config file bounds the
    start-up at 2 s. The workers that serve started under the default bound (60 s): a
    healthy start never races the short one, however slow the machine; SIGHUP applies it
    to the master at once."""
    write_app(tmp_path, "2", gate=str(tmp_path / "never"))
    write_config(tmp_path, workers=workers)
    with open(tmp_path / "narwhal.toml", "a") as f:
        f.write("timeout_worker_startup = 2\n")


def roll_aborted(server, workers: int) -> int:
    """SIGHUP with hang_next_starts in place: the roll's first replacement is stopped after
    the bound and the roll aborted. Returns that replacement's PID."""
    server.signal(signal.SIGHUP)
    m = server.wait_for_log(
        rf"Rolling restart aborted at 1/{workers}: worker process \[(\d+)\] failed during "
        r"start-up \(did not become ready within 2 s, then signal SIGTERM\); the running "
        r"workers keep serving", 60)
    stuck = int(m.group(1))
    assert re.search(TIMED_OUT.replace(r"(\d+)", str(stuck)), server.log()), server.log()
    return stuck


def test_a_stuck_rolling_restart_replacement_aborts_the_roll(narwhal, tmp_path):
    write_app(tmp_path, "1")
    write_config(tmp_path, workers=1)
    server = start_from_config(tmp_path, 1)
    (old,) = ready_pids(server)
    hang_next_starts(tmp_path, 1)
    stuck = roll_aborted(server, 1)
    assert re.search(r"Settings changed for the new workers: timeout_worker_startup\n",
                     server.log()), server.log()
    assert stuck != old and server.proc.poll() is None, server.log()
    assert answers(server, 1, limit=20) == {(old, "1", "", "1")}
    wait_until(lambda: not alive(stuck), f"worker {stuck} gone")
    stats = master_stats(server)
    assert stats["workers_start_timeouts"] == 1, stats
    assert [(w["pid"], w["state"]) for w in stats["workers"]] == [(old, "ready")], stats
    assert "Rolling restart done" not in server.log(), server.log()
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_a_stuck_sigttin_worker_is_not_added(narwhal, tmp_path):
    write_app(tmp_path, "1")
    write_config(tmp_path, workers=2)
    server = start_from_config(tmp_path, 2)
    old = set(ready_pids(server))
    hang_next_starts(tmp_path, 2)
    roll_aborted(server, 2)
    server.signal(signal.SIGTTIN)
    m = server.wait_for_log(
        r"Worker process \[(\d+)\] failed during start-up \(did not become ready within 2 s, "
        r"then signal SIGTERM\): not added, 2 workers", 60)
    assert int(m.group(1)) not in old
    assert server.proc.poll() is None, server.log()
    assert {pid for pid, *_ in answers(server, 2)} == old
    stats = master_stats(server)
    assert stats["workers_target"] == 2 and stats["workers_start_timeouts"] == 2, stats
    assert sorted(w["pid"] for w in stats["workers"]) == sorted(old), stats
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_a_stuck_recycling_successor_leaves_the_old_worker_serving_and_is_retried(
        narwhal, tmp_path):
    """The successor of a worker at its request limit hangs in its start-up: after the
    bound the old worker keeps serving, and recycling is tried again after the back-off
    (10 s, then 20 s)."""
    write_app(tmp_path, "1")
    write_config(tmp_path, workers=1)
    server = start_from_config(tmp_path, 1, "--limit-max-requests", "3")
    (old,) = ready_pids(server)
    hang_next_starts(tmp_path, 1)
    roll_aborted(server, 1)
    for _ in range(3):
        assert answers(server, 1, limit=1) == {(old, "1", "", "1")}
    for delay in (10, 20):
        m = server.wait_for_log(
            rf"Worker process \[(\d+)\] failed during start-up \(did not become ready within "
            rf"2 s, then signal SIGTERM\); worker process \[{old}\] keeps serving, its "
            rf"replacement is tried again in {delay} s", 60)
        stuck = int(m.group(1))
        assert server.proc.poll() is None, server.log()
        assert answers(server, 1, limit=1) == {(old, "1", "", "1")}
        wait_until(lambda: not alive(stuck), f"worker {stuck} gone")
    log = server.log()
    # Each try is a new successor for the same worker, logged as such.
    assert log.count(f"Worker process [{old}] served") == 2, log
    stats = master_stats(server)
    assert stats["workers_start_timeouts"] == 3 and stats["workers_recycled"] == 1, stats
    assert [(w["pid"], w["state"]) for w in stats["workers"]] == [(old, "ready")], stats
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_a_recycling_successor_that_fails_to_import_leaves_the_old_worker_serving(
        narwhal, tmp_path):
    """Not only a stuck successor: one that exits during its start-up (here an import
    error) is given up the same way; the master does not stop."""
    write_app(tmp_path, "1")
    write_config(tmp_path, workers=1)
    server = start_from_config(tmp_path, 1, "--limit-max-requests", "3")
    (old,) = ready_pids(server)
    (tmp_path / "roll_app.py").write_text(BROKEN_APP)
    for _ in range(3):
        assert answers(server, 1, limit=1) == {(old, "1", "", "1")}
    server.wait_for_log(
        rf"Worker process \[\d+\] failed during start-up \(exit status 1\); worker process "
        rf"\[{old}\] keeps serving, its replacement is tried again in 10 s", 60)
    assert "roll_app broken on purpose" in server.log()
    assert server.proc.poll() is None, server.log()
    assert answers(server, 1, limit=1) == {(old, "1", "", "1")}
    assert master_stats(server)["workers_start_timeouts"] == 0
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()
