"""systemd integration, against a small fake service manager: a Unix datagram socket as
NOTIFY_SOCKET collecting what narwhal tells it (READY=1, RELOADING=1, STOPPING=1,
WATCHDOG=1, each with the sender's PID from SCM_CREDENTIALS), and listening sockets the
test binds itself and passes as systemd does (fd 3 on, LISTEN_FDS, LISTEN_PID of the
exec'd process, LISTEN_FDNAMES)."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

import rawhttp
from conftest import APPS_DIR, NARWHAL_BIN, Server, _pump, _STARTED
from tls_certs import certs  # noqa: F401 (a fixture)

# As systemd's own exec does: LISTEN_PID is the PID of the process that reads it, known
# only in that process; the shell sets it to its own PID and execs narwhal in its place.
SHELL_EXEC = 'LISTEN_PID=$$ WATCHDOG_PID=$$ exec "$0" "$@"'


class FakeManager:
    """NOTIFY_SOCKET: collects each datagram as (sender pid, {key: value})."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.messages: list[tuple[int, dict[str, str]]] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        cred_size = struct.calcsize("3i")
        while True:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(cred_size))
            except OSError:
                return
            pid = 0
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", value[:cred_size])[0]
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self._changed:
                self.messages.append((pid, fields))
                self._changed.notify_all()

    def count(self, key: str) -> int:
        with self._changed:
            return sum(1 for _, m in self.messages if key in m)

    def keys(self) -> list[str]:
        with self._changed:
            return [k for _, m in self.messages for k in m if k in
                    ("READY", "RELOADING", "STOPPING")]

    def wait_for(self, predicate, what: str, timeout: float = 30.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self), timeout):
                raise AssertionError(f"fake manager: no {what} within {timeout}s: {self.messages}")

    def senders(self) -> set[int]:
        with self._changed:
            return {pid for pid, _ in self.messages}

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def manager(tmp_path):
    m = FakeManager(tmp_path / "notify.sock")
    yield m
    m.close()


def listening_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def start(*args: str, sockets=(), names=(), env=None, listen_pid_ok=True) -> Server:
    """narwhal under the fake manager's environment; `sockets` become fds 3, 4, ..."""
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("VIRTUAL_ENV", "NARWHAL_BIN", "NARWHAL_TEST_VENV")}
    full_env.update(env or {})
    if sockets:
        full_env["LISTEN_FDS"] = str(len(sockets))
        full_env["LISTEN_FDNAMES"] = ":".join(names)
    fds = [s.fileno() for s in sockets]

    def shuffle() -> None:  # in the child, before exec: the passed sockets from fd 3 on
        moved = [os.dup(fd) for fd in fds]  # above 3 + n first, so no dup2 overwrites a source
        for i, fd in enumerate(moved):
            os.dup2(fd, 3 + i)

    shell = SHELL_EXEC if listen_pid_ok else 'LISTEN_PID=1 WATCHDOG_PID=$$ exec "$0" "$@"'
    cmd = ["/bin/sh", "-c", shell, NARWHAL_BIN, "systemd_app:app", "--app-dir", str(APPS_DIR),
           *args]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=full_env, close_fds=False,
                            preexec_fn=shuffle)
    server = Server(proc, None, None)
    server._reader = threading.Thread(target=_pump, args=(server, proc.stdout), daemon=True)
    server._reader.start()
    _STARTED.append(server)
    return server


@pytest.fixture
def started():
    mark = len(_STARTED)
    yield start
    for server in _STARTED[mark:]:
        if server.proc.poll() is None:
            server.stop(signal.SIGTERM, timeout=10)
    del _STARTED[mark:]


def get(port: int, target: str = "/") -> rawhttp.Response:
    return rawhttp.get(("127.0.0.1", port), target)


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["single", "workers"])
def test_socket_activation_and_notify(manager, started, tmp_path, workers):
    sock = listening_socket()
    port = sock.getsockname()[1]
    unused = free_port()
    gate = tmp_path / "startup-gate"
    server = started("--host", "127.0.0.1", "--port", str(unused), *workers,
                     sockets=[sock], names=["http"],
                     env={"NOTIFY_SOCKET": manager.path, "SYSTEMD_APP_GATE": str(gate)})
    sock.close()  # the server holds its own copy
    server.wait_for_log("systemd_app: startup waiting")
    # The lifespan startup has not completed: the manager must not have been told READY.
    assert manager.count("READY") == 0, manager.messages
    gate.touch()
    manager.wait_for(lambda m: m.count("READY") >= 1, "READY=1")
    server.wait_for_log(r"narwhal running on socket 3 \(http://127\.0\.0\.1:%d\)" % port)
    first = get(port)
    assert first.status == 200
    assert refused(unused), "narwhal bound --port although it was given a socket"
    # Only the process systemd started speaks for the service (NotifyAccess=main).
    assert manager.senders() == {server.pid}
    ready_status = [m["STATUS"] for _, m in manager.messages if "READY" in m][0]
    assert str(port) in ready_status

    os.kill(server.pid, signal.SIGHUP)
    manager.wait_for(lambda m: m.count("READY") >= 2, "READY=1 after SIGHUP")
    reloading = [m for _, m in manager.messages if "RELOADING" in m]
    assert len(reloading) == 1 and int(reloading[0]["MONOTONIC_USEC"]) > 0
    assert manager.keys() == ["READY", "RELOADING", "READY"]
    if workers:
        server.wait_for_log("Rolling restart done")
        assert get(port).body.decode() != first.body.decode()  # served by a new worker
    assert get(port).status == 200

    assert server.stop(signal.SIGTERM) == 0
    assert manager.keys() == ["READY", "RELOADING", "READY", "STOPPING"]
    assert manager.senders() == {server.pid}


def test_listen_pid_of_another_process_is_ignored(manager, started):
    sock = listening_socket()
    server = started("--host", "127.0.0.1", "--port", "0", sockets=[sock], names=["http"],
                     listen_pid_ok=False, env={"NOTIFY_SOCKET": manager.path})
    m = server.wait_for_log(r"narwhal running on http://127\.0\.0\.1:(\d+)")
    bound = int(m.group(1))
    assert bound != sock.getsockname()[1]
    assert get(bound).status == 200
    manager.wait_for(lambda m: m.count("READY") >= 1, "READY=1")
    sock.close()


def test_named_metrics_socket(manager, started):
    http, metrics = listening_socket(), listening_socket()
    server = started("--metrics-bind", "127.0.0.1:0", sockets=[http, metrics],
                     names=["http", "metrics"], env={"NOTIFY_SOCKET": manager.path})
    manager.wait_for(lambda m: m.count("READY") >= 1, "READY=1")
    server.wait_for_log(r"Prometheus metrics on http://127\.0\.0\.1:%d/metrics"
                        % metrics.getsockname()[1])
    assert get(http.getsockname()[1]).status == 200
    scrape = get(metrics.getsockname()[1], "/metrics")
    assert scrape.status == 200 and b"narwhal_" in scrape.body
    http.close()
    metrics.close()


def _watchdog_env(manager) -> dict[str, str]:
    # WatchdogSec=0.4s: WATCHDOG=1 every 0.2 s while the loops turn.
    return {"NOTIFY_SOCKET": manager.path, "WATCHDOG_USEC": "400000"}


def test_watchdog_stops_while_the_loop_is_blocked(manager, started, tmp_path):
    sock = listening_socket()
    port = sock.getsockname()[1]
    # An I/O thread of its own (also in the --io-threads 0 pass): the live path, which
    # shows the loop is stuck, answers beside a blocked loop only from one.
    server = started("--timeout-worker-healthcheck", "1", "--health-live-path", "/livez",
                     "--io-threads", "1", sockets=[sock], names=["http"],
                     env=_watchdog_env(manager))
    manager.wait_for(lambda m: m.count("WATCHDOG") >= 3, "WATCHDOG=1 while serving")
    gate = tmp_path / "release"
    blocked = threading.Thread(target=lambda: get(port, f"/block?gate={gate}"), daemon=True)
    blocked.start()
    server.wait_for_log("systemd_app: loop blocked")
    # The live path answers from the same heartbeats: once it says the loop is stuck,
    # no more WATCHDOG=1 may go out (one already on its way is allowed).
    deadline = time.monotonic() + 30
    while get(port, "/livez").status != 503:
        assert time.monotonic() < deadline, "the live path never saw the blocked loop"
        time.sleep(0.05)
    stalled = manager.count("WATCHDOG")
    time.sleep(2.0)  # ten watchdog periods with the loop still blocked
    assert manager.count("WATCHDOG") <= stalled + 1, "WATCHDOG=1 kept coming from a stuck loop"
    gate.touch()
    blocked.join(30)
    manager.wait_for(lambda m: m.count("WATCHDOG") >= stalled + 3, "WATCHDOG=1 after recovery")
    sock.close()


def test_watchdog_under_workers_comes_from_the_master(manager, started):
    sock = listening_socket()
    server = started("--workers", "2", sockets=[sock], names=["http"], env=_watchdog_env(manager))
    manager.wait_for(lambda m: m.count("READY") >= 1, "READY=1")
    manager.wait_for(lambda m: m.count("WATCHDOG") >= 3, "WATCHDOG=1 while serving")
    assert manager.senders() == {server.pid}
    assert get(sock.getsockname()[1]).status == 200
    sock.close()


def test_socket_activation_without_notify_socket(started):
    # A socket-activated service need not be Type=notify: without NOTIFY_SOCKET nothing
    # is sent, and serving and a clean stop do not depend on it.
    sock = listening_socket()
    server = started(sockets=[sock], names=["http"])
    server.wait_for_log(r"narwhal running on socket 3")
    assert get(sock.getsockname()[1]).status == 200
    assert server.stop(signal.SIGTERM) == 0
    sock.close()


UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"


def unit_settings(name: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def test_units_agree_with_the_server(tmp_path):
    service = unit_settings("narwhal.service")
    assert service["Type"] == ["notify"] and service["NotifyAccess"] == ["main"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert service["KillSignal"] == ["SIGTERM"]
    # TimeoutStopSec covers the master's own bound on a graceful stop with the defaults
    # (server/supervisor.cpp: delay + graceful + 3 cancel rounds + 1 s, plus 5 s margin).
    config = subprocess.run([NARWHAL_BIN, "--print-config"], capture_output=True, text=True,
                            check=True).stdout
    value = {k.strip(): v.strip() for k, v in
             (line.split("=", 1) for line in config.splitlines() if "=" in line)}
    bound = (float(value["timeout_shutdown_delay"]) + float(value["timeout_graceful_shutdown"])
             + 3 * float(value["timeout_cancel_grace"]) + 1 + 5)
    assert float(service["TimeoutStopSec"][0]) >= bound
    # The watchdog outlasts the health check, so the master replaces a hung worker first.
    assert float(service["WatchdogSec"][0]) > float(value["timeout_worker_healthcheck"])
    assert unit_settings("narwhal.socket")["FileDescriptorName"] == ["http"]
    assert unit_settings("narwhal-metrics.socket")["FileDescriptorName"] == ["metrics"]

    analyze = "/usr/bin/systemd-analyze"
    if not os.access(analyze, os.X_OK):
        pytest.skip("systemd-analyze is not installed (the systemd package): units not verified")
    # verify checks that ExecStart= names an executable: the built binary stands in.
    for unit in UNITS.iterdir():
        text = unit.read_text().replace("/usr/local/bin/narwhal", NARWHAL_BIN)
        (tmp_path / unit.name).write_text(text)
    names = sorted(p.name for p in tmp_path.iterdir())
    result = subprocess.run([analyze, "verify", *names], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    # verify exits 0 on most problems; its complaints go to stderr.
    assert result.returncode == 0 and result.stderr == "", result.stderr


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["single", "workers"])
def test_tls_applies_to_an_activated_socket(manager, started, certs, workers):
    from tlsclient import HOST, client_context, server_flags

    sock = listening_socket()
    port = sock.getsockname()[1]
    server = started(*server_flags(certs), *workers, sockets=[sock], names=["http"],
                     env={"NOTIFY_SOCKET": manager.path})
    sock.close()
    manager.wait_for(lambda m: m.count("READY") >= 1, "READY=1")
    server.wait_for_log(r"narwhal running on socket 3 \(https://127\.0\.0\.1:%d\)" % port)
    ctx = client_context(certs)
    with socket.create_connection((HOST, port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST) as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]
    assert server.stop(signal.SIGTERM) == 0
    assert manager.keys() == ["READY", "STOPPING"]
