"""Load balancers in front of narwhal, for tests: a config written into the test's
tmp_path, the balancer started in the foreground on a free loopback port, ready once it
accepts connections, and stopped by PID.

    def test_x(balancers, tmp_path):
        lb = balancers.nginx(tmp_path, http=nginx_http_proxy([server.port], headers=...))
        lb.addr  # ("127.0.0.1", port)

`balancers.start(name, cmd, port, log_path)` runs any other balancer (HAProxy:
`["haproxy", "-f", conf, "-db"]`) the same way.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

HOST = "127.0.0.1"
START_GUARD = 30.0  # failure guard for a balancer to accept connections, not a pace
# Debian's place for nginx's dynamic modules; /etc/nginx/modules-enabled names the ones installed.
NGINX_MODULES = Path("/usr/lib/nginx/modules")


def free_port() -> int:
    """A loopback port no one listens on now (the kernel's pick). A balancer that loses a
    race for it fails to start and is retried by `Balancers.start`."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Balancer:
    name: str
    proc: subprocess.Popen
    port: int
    log_path: Path
    conf_path: Path | None = None

    @property
    def addr(self) -> tuple[str, int]:
        return (HOST, self.port)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


@dataclass
class Balancers:
    """Starts balancers and stops every one of them, by PID, at teardown."""

    started: list[Balancer] = field(default_factory=list)

    def start(self, name: str, cmd: list[str], port: int, log_path: Path,
              conf_path: Path | None = None) -> Balancer:
        """Run `cmd` in the foreground (its output to `log_path`); return once `port`
        accepts. Raises if the process exits first (the caller may retry on another port)."""
        log = open(log_path, "ab")
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        lb = Balancer(name, proc, port, log_path, conf_path)
        self.started.append(lb)
        deadline = time.monotonic() + START_GUARD
        while not _accepting(port):
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} before accepting:\n{lb.log()}")
            if time.monotonic() > deadline:
                lb.stop()
                raise AssertionError(f"{name} did not accept on port {port} within {START_GUARD}s:\n{lb.log()}")
            time.sleep(0.05)  # polling for the listener, not a pace the test depends on
        return lb

    def nginx(self, tmp_path: Path, *, http: str = "", stream: str = "", attempts: int = 3) -> Balancer:
        """nginx with an `http {}` and/or `stream {}` block body. `{port}` in them is the
        port it listens on (chosen here); temp paths, pid and logs go to tmp_path."""
        last: Exception | None = None
        for attempt in range(attempts):
            port = free_port()
            d = tmp_path / f"nginx-{port}"
            d.mkdir(parents=True, exist_ok=True)
            conf = d / "nginx.conf"
            conf.write_text(nginx_config(d, http.replace("{port}", str(port)),
                                         stream.replace("{port}", str(port))))
            cmd = ["nginx", "-p", str(d), "-e", str(d / "error.log"), "-c", str(conf), "-g", "daemon off;"]
            try:
                return self.start("nginx", cmd, port, d / "output.log", conf)
            except RuntimeError as e:  # lost the port to someone else: another one
                last = e
        raise AssertionError(f"nginx did not start in {attempts} attempts: {last}")

    def stop_all(self) -> None:
        for lb in self.started:
            lb.stop()
        self.started.clear()


def nginx_config(d: Path, http: str, stream: str) -> str:
    lines = []
    if stream:
        lines.append(f"load_module {NGINX_MODULES / 'ngx_stream_module.so'};")
    lines += [
        "worker_processes 1;",
        f"pid {d / 'nginx.pid'};",
        f"error_log {d / 'error.log'} info;",
        "events { worker_connections 256; }",
    ]
    if http:
        temp = " ".join(f"{kind}_temp_path {d / kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                      "uwsgi", "scgi"))
        lines.append(f"http {{ access_log off; {temp}\n{http}\n}}")
    if stream:
        lines.append(f"stream {{\n{stream}\n}}")
    return "\n".join(lines) + "\n"


def nginx_http_proxy(backends: list[int], locations: str) -> str:
    """An http block body: an upstream of narwhal ports (keep-alive connections, so one
    upstream connection carries several clients' requests) and a server on {port}."""
    servers = " ".join(f"server {HOST}:{p};" for p in backends)
    return (f"upstream narwhal {{ {servers} keepalive 4; }}\n"
            f"server {{ listen {HOST}:{{port}};\n{locations}\n}}")


def nginx_stream_proxy(backends: list[int], *, proxy_protocol: bool = True) -> str:
    servers = " ".join(f"server {HOST}:{p};" for p in backends)
    pp = "proxy_protocol on;" if proxy_protocol else ""
    return f"upstream narwhal {{ {servers} }}\nserver {{ listen {HOST}:{{port}}; proxy_pass narwhal; {pp} }}"


@pytest.fixture
def balancers() -> Iterator[Balancers]:
    b = Balancers()
    try:
        yield b
    finally:
        b.stop_all()
