"""--reload: the master watches the source tree with inotify and replaces its worker (new
before old) when a matching file changes; a broken edit leaves the old worker serving
until the next change. Real binary, real files in tmp_path, real requests; every wait is
on a condition with a generous limit; servers are stopped by PID."""

from __future__ import annotations

import http.client
import re
import signal

from rawhttp import TIMESTAMP
from test_workers import alive, ready_pids, wait_until

RELOADING = re.compile(r"^" + TIMESTAMP + r"WARNING:\s+WatchFiles detected changes in (.+)\. Reloading\.\.\.$",
                       re.M)
ROLL_DONE = re.compile(r"Rolling restart done: 1 workers \[(\d+)\]")

APP = '''
import os

BODY = {body!r}
PAGE = os.path.join(os.path.dirname(__file__), "site", "page.html")
if os.path.exists(PAGE):
    with open(PAGE) as f:
        BODY = f.read().strip()


async def app(scope, receive, send):
    headers = [(b"x-pid", str(os.getpid()).encode())]
    await send({{"type": "http.response.start", "status": 200, "headers": headers}})
    await send({{"type": "http.response.body", "body": BODY.encode()}})
'''

BROKEN = "def app(:\n    pass\n"  # a syntax error


def write_app(directory, body: str) -> None:
    (directory / "reload_app.py").write_text(APP.format(body=body))


def start(narwhal, tmp_path, *args: str):
    """cwd is the watched directory, so the change line names files relative to it, as
    uvicorn's does."""
    server = narwhal("reload_app:app", "--reload", "--reload-dir", str(tmp_path), "--lifespan",
                     "off", *args, app_dir=tmp_path, cwd=tmp_path)
    wait_until(lambda: ready_pids(server) or server.proc.poll() is not None, "worker ready", 60)
    assert server.proc.poll() is None, server.log()
    return server


def fetch(server) -> tuple[str, int]:
    """One request on a new connection (a kept-alive one would stay with its worker)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200, response.status
        return response.read().decode(), int(response.getheader("x-pid"))
    finally:
        conn.close()


def wait_body(server, body: str) -> int:
    """Polls until the app answers `body`; returns the answering worker's PID."""
    seen: list[tuple[str, int]] = []

    def answered() -> bool:
        seen.append(fetch(server))
        return seen[-1][0] == body

    wait_until(answered, f"{body!r} served (last: {seen[-1:]})\n{server.log()}", 60)
    return seen[-1][1]


def reload_lines(server) -> list[str]:
    return RELOADING.findall(server.log())


def rolls_done(server) -> int:
    return len(ROLL_DONE.findall(server.log()))


def test_an_edit_is_served_and_a_broken_edit_keeps_the_old_worker(narwhal, tmp_path):
    write_app(tmp_path, "v1")
    server = start(narwhal, tmp_path)
    assert "Will watch for changes in these directories: ['" + str(tmp_path.resolve()) + "']" \
        in server.log(), server.log()
    body, first = fetch(server)
    assert body == "v1"

    write_app(tmp_path, "v2")
    second = wait_body(server, "v2")
    assert second != first
    wait_until(lambda: not alive(first), f"old worker {first} gone")
    wait_until(lambda: rolls_done(server) == 1, "the restart done")
    assert reload_lines(server) == ["'reload_app.py'"], server.log()
    assert f"Rolling restart 1/1: worker process [{first}] replaced by [{second}]" in server.log()

    # A syntax error: the new worker fails to import, the old one keeps serving.
    (tmp_path / "reload_app.py").write_text(BROKEN)
    m = server.wait_for_log(r"Rolling restart aborted at 1/1: worker process \[(\d+)\] failed "
                            r"during start-up \(exit status 1\); the running workers keep serving",
                            60)
    failed = int(m.group(1))
    assert failed != second
    assert "SyntaxError" in server.log(), server.log()
    assert "Error loading ASGI app." in server.log(), server.log()
    for _ in range(20):
        assert fetch(server) == ("v2", second)
    assert server.proc.poll() is None

    # Fixed: the next change is tried again.
    write_app(tmp_path, "v3")
    third = wait_body(server, "v3")
    assert third not in (second, failed)
    wait_until(lambda: not alive(second), f"old worker {second} gone")
    assert len(reload_lines(server)) == 3, server.log()
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_excluded_files_trigger_nothing(narwhal, tmp_path):
    write_app(tmp_path, "v1")
    server = start(narwhal, tmp_path)
    (tmp_path / "notes.txt").write_text("not code")
    (tmp_path / "reload_app.pyc").write_bytes(b"not bytecode")
    (tmp_path / ".reload_app.py.swp").write_text("an editor's swap file")
    (tmp_path / "~reload_app.py").write_text("a backup")
    # An included change after the excluded ones: the only restart, naming only it.
    write_app(tmp_path, "v2")
    wait_body(server, "v2")
    wait_until(lambda: rolls_done(server) == 1, "the restart done")
    assert reload_lines(server) == ["'reload_app.py'"], server.log()
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_a_burst_of_writes_is_one_restart(narwhal, tmp_path):
    """The delay is far longer than five writes take, so they all fall in one burst."""
    write_app(tmp_path, "v1")
    server = start(narwhal, tmp_path, "--reload-delay", "2")
    for n in range(2, 7):
        write_app(tmp_path, f"v{n}")
    wait_body(server, "v6")
    wait_until(lambda: rolls_done(server) == 1, "the restart done")
    assert reload_lines(server) == ["'reload_app.py'"], server.log()
    assert len(re.findall(r"Started worker process", server.log())) == 2, server.log()
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_include_glob_and_a_new_subdirectory(narwhal, tmp_path):
    write_app(tmp_path, "no page")
    server = start(narwhal, tmp_path, "--reload-include", "*.html")
    assert fetch(server)[0] == "no page"
    # site/ did not exist when the watch began.
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "page.html").write_text("page one")
    wait_body(server, "page one")
    (tmp_path / "site" / "page.html").write_text("page two")
    wait_body(server, "page two")
    wait_until(lambda: rolls_done(server) == 2, "both restarts done")
    assert reload_lines(server) == ["'site/page.html'"] * 2, server.log()
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_without_the_include_an_html_change_is_ignored(narwhal, tmp_path):
    write_app(tmp_path, "v1")
    (tmp_path / "site").mkdir()
    server = start(narwhal, tmp_path)
    (tmp_path / "site" / "page.html").write_text("ignored")
    (tmp_path / "site" / "mod.py").write_text("X = 1\n")  # included: the one restart
    wait_until(lambda: rolls_done(server) == 1, "the restart done")
    assert reload_lines(server) == ["'site/mod.py'"], server.log()
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_a_broken_module_at_start_waits_for_the_fix(narwhal, tmp_path):
    """Unlike --workers alone, a worker that cannot start under --reload leaves the master
    waiting for the next change rather than stopping it."""
    (tmp_path / "reload_app.py").write_text(BROKEN)
    server = narwhal("reload_app:app", "--reload", "--reload-dir", str(tmp_path), "--lifespan",
                     "off", app_dir=tmp_path, cwd=tmp_path)
    server.wait_for_log(r"failed during start-up \(exit status 1\): waiting for a change to try "
                        r"again", 60)
    assert server.proc.poll() is None
    write_app(tmp_path, "fixed")
    wait_body(server, "fixed")
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_reload_with_workers_replaces_each(narwhal, tmp_path):
    write_app(tmp_path, "v1")
    server = narwhal("reload_app:app", "--reload", "--workers", "2", "--reload-dir",
                     str(tmp_path), "--lifespan", "off", app_dir=tmp_path, cwd=tmp_path)
    wait_until(lambda: len(ready_pids(server)) >= 2, "2 workers ready", 60)
    write_app(tmp_path, "v2")
    server.wait_for_log(r"Rolling restart done: 2 workers", 60)
    for _ in range(20):
        assert fetch(server)[0] == "v2"
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()


def test_a_same_size_rewrite_is_imported_afresh(narwhal, tmp_path):
    """A module rewritten at once with the same size keeps the mtime second and size that
    cached bytecode is checked against: the new worker must compile the source, so the
    master writes no bytecode for its workers even when the environment would."""
    write_app(tmp_path, "v1")
    server = narwhal("reload_app:app", "--reload", "--reload-dir", str(tmp_path), "--lifespan",
                     "off", app_dir=tmp_path, cwd=tmp_path, env={"PYTHONDONTWRITEBYTECODE": ""})
    wait_until(lambda: ready_pids(server) or server.proc.poll() is not None, "worker ready", 60)
    assert fetch(server)[0] == "v1"
    for n in range(2, 5):
        write_app(tmp_path, f"v{n}")
        wait_body(server, f"v{n}")
    assert not (tmp_path / "__pycache__").exists()
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()
