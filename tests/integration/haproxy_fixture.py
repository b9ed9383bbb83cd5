"""HAProxy in front of narwhal instances, for load-balancer tests.

`HAProxy(tmp_path, backends, check_path)` writes a config into `tmp_path` (a frontend
on a free 127.0.0.1 port, one backend with HTTP health checks on `check_path`, an admin
socket; with `proxy_v2`, every connection to a backend, health checks included, starts
with a PROXY protocol v2 header), starts Debian's haproxy in the foreground (`-db`) and waits until every server
is UP. `stop()` ends it by PID. The admin socket answers `server_status(name)`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from balancers import free_port

HAPROXY = "/usr/sbin/haproxy"
GUARD = 20.0


class HAProxy:
    def __init__(self, tmp_path: Path, backends: list[tuple[str, int]], check_path: str,
                 inter_ms: int = 200, proxy_v2: bool = False) -> None:
        self.dir = Path(tmp_path)
        # HAProxy has no "port 0, tell me which": take one the kernel picks and hand it over.
        self.port = free_port()
        self.admin = self.dir / "haproxy-admin.sock"
        extra = " send-proxy-v2 check-send-proxy" if proxy_v2 else ""
        servers = "\n".join(f"    server s{i} {host}:{port} check{extra}"
                            for i, (host, port) in enumerate(backends))
        # retries 0 and no redispatch: a request sent to a backend that refuses it fails,
        # so only the health checks can keep the clients from seeing a stopped backend.
        config = f"""
global
    stats socket {self.admin} mode 600 level admin

defaults
    mode http
    timeout connect 2s
    timeout client 20s
    timeout server 20s
    retries 0

frontend fe
    bind 127.0.0.1:{self.port}
    default_backend be

backend be
    balance roundrobin
    option httpchk GET {check_path}
    http-check expect status 200
    default-server inter {inter_ms}ms fall 1 rise 1
{servers}
"""
        self.config = self.dir / "haproxy.cfg"
        self.config.write_text(config)
        self.log = self.dir / "haproxy.log"
        self._log_file = open(self.log, "wb")
        self.proc = subprocess.Popen([HAPROXY, "-f", str(self.config), "-db"],
                                     stdin=subprocess.DEVNULL, stdout=self._log_file,
                                     stderr=subprocess.STDOUT)
        try:
            self.wait_status([f"s{i}" for i in range(len(backends))], "UP")
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(GUARD)
            s.connect(str(self.admin))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def server_status(self, name: str) -> str:
        """UP, DOWN, ... of server `name` in the backend (from `show stat`'s CSV)."""
        lines = self.command("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == "be" and row.get("svname") == name:
                return row["status"]
        raise AssertionError(f"no server {name} in:\n" + "\n".join(lines))

    def wait_status(self, names: list[str], status: str, timeout: float = GUARD) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"haproxy exited:\n{self.log.read_text()}")
            try:
                if all(self.server_status(n).startswith(status) for n in names):
                    return
            except (FileNotFoundError, ConnectionRefusedError):
                pass  # the admin socket is not there yet
            if time.monotonic() > deadline:
                raise AssertionError(f"{names} not {status} within {timeout}s")
            time.sleep(0.05)  # poll interval

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(GUARD)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log_file.close()

    def __enter__(self) -> "HAProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
