"""Start the real narwhal binary on an ephemeral loopback port and stop it by PID.

Every server a test starts is registered and stopped at teardown, also when the
test fails. Readiness is the "running on" log line, read from the server's stderr
pipe; no test sleeps for a fixed time.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS_DIR = Path(__file__).resolve().parent / "apps"
NARWHAL_BIN = os.environ.get("NARWHAL_BIN") or str(ROOT / "build" / "narwhal")
READY = re.compile(r"narwhal running on (?:(?P<scheme>https?)://(?P<host>[^:]+):(?P<port>\d+)|(?P<other>\S+ \S+))")


class Server:
    """A running narwhal process and everything it has logged so far."""

    def __init__(self, proc: subprocess.Popen, host: str | None, port: int | None) -> None:
        self.proc = proc
        self.host = host
        self.port = port
        self.scheme = "http"  # "https" when the ready line says so (TLS is on)
        self._lines: list[str] = []
        # Re-entrant: a failing wait_for_log formats self.log() while holding it.
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def addr(self) -> tuple[str, int]:
        assert self.host is not None and self.port is not None
        return (self.host, self.port)

    def _feed(self, line: str) -> None:
        with self._changed:
            self._lines.append(line)
            self._changed.notify_all()

    def log(self) -> str:
        with self._lock:
            return "".join(self._lines)

    def wait_for_log(self, pattern: str, timeout: float = 30.0) -> re.Match:
        """Block until a log line matches `pattern` (a regex); fail after `timeout`."""
        rx = re.compile(pattern)
        found: list[re.Match] = []

        def match() -> bool:
            for line in self._lines:
                m = rx.search(line)
                if m:
                    found.append(m)
                    return True
            return False

        with self._changed:
            if not self._changed.wait_for(lambda: match() or self.proc.poll() is not None, timeout):
                raise AssertionError(f"no log line matching {pattern!r} within {timeout}s:\n{self.log()}")
            if not found and not match():
                raise AssertionError(f"server exited before logging {pattern!r}:\n{self.log()}")
        return found[0]

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self, sig: int = 15, timeout: float = 15.0) -> int:  # 15 = SIGTERM (`signal` here is the method above)
        """Send `sig`, wait for exit (SIGKILL after `timeout`), return the exit status."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._reader.join(5)
        return self.proc.returncode


def _pump(server: Server, stream) -> None:
    for raw in iter(stream.readline, b""):
        server._feed(raw.decode("utf-8", "replace"))
    stream.close()


def launch(
    app: str,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    app_dir: str | os.PathLike | None = APPS_DIR,
    port: str = "0",
    wait: bool = True,
    timeout: float = 60.0,  # a failure guard: a sanitizer build importing Django on a busy machine
) -> Server:
    """Start narwhal serving `app`; with `wait`, return once it accepts connections."""
    cmd = [NARWHAL_BIN]
    if app:
        cmd.append(app)
    if app_dir is not None:
        cmd += ["--app-dir", str(app_dir)]
    if "--uds" not in args and "--fd" not in args:
        cmd += ["--host", "127.0.0.1", "--port", port]
    cmd += list(args)
    full_env = dict(os.environ)
    full_env.pop("VIRTUAL_ENV", None)
    full_env.pop("NARWHAL_BIN", None)  # the tests' own variable, not a server setting
    full_env.pop("NARWHAL_TEST_VENV", None)
    full_env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    if env:
        full_env.update(env)
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
        pass_fds=_pass_fds(args),
    )
    server = Server(proc, None, None)
    server._reader = threading.Thread(target=_pump, args=(server, proc.stdout), daemon=True)
    server._reader.start()
    _STARTED.append(server)
    if wait:
        m = server.wait_for_log(READY.pattern, timeout)
        if m.group("port"):
            server.host, server.port = m.group("host"), int(m.group("port"))
            server.scheme = m.group("scheme")
    return server


def _pass_fds(args: tuple[str, ...]) -> tuple[int, ...]:
    if "--fd" in args:
        return (int(args[args.index("--fd") + 1]),)
    return ()


_STARTED: list[Server] = []


def serving(app: str, *args: str, **kw) -> Iterator[Server]:
    """For module-scoped fixtures: `yield from serving(...)` starts a server and stops it
    by PID when the module is done, also when a test failed."""
    server = launch(app, *args, **kw)
    try:
        yield server
    finally:
        server.stop()
        if server in _STARTED:
            _STARTED.remove(server)


@pytest.fixture
def narwhal() -> Iterator:
    """`narwhal(app, *flags, **kw)` starts a server; all are stopped by PID at teardown."""
    mark = len(_STARTED)
    yield launch
    for server in _STARTED[mark:]:
        if server.proc.poll() is None:
            server.stop(signal.SIGTERM, timeout=5)
    del _STARTED[mark:]


def run_cli(*args: str, timeout: float = 30.0, env: dict[str, str] | None = None,
            cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """Run narwhal to completion (for --help, --version, bad flags, start-up failures)."""
    full_env = dict(os.environ)
    full_env.pop("VIRTUAL_ENV", None)
    full_env.pop("NARWHAL_BIN", None)  # the tests' own variables, not server settings
    full_env.pop("NARWHAL_TEST_VENV", None)
    if env:
        full_env.update(env)
    return subprocess.run([NARWHAL_BIN, *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env, cwd=cwd, stdin=subprocess.DEVNULL)
