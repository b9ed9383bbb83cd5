"""Raw-socket HTTP/1.x helpers: send exact bytes, parse the server's answer strictly.

The parser is deliberately strict about the server's output (CRLF line endings,
well-formed status line, exact chunk framing) because these helpers exist to test
the server's framing; it is lenient only in returning incomplete responses (a
response cut short by the server is data for the test, not an exception).
"""

from __future__ import annotations

import os
import re
import socket
import time
from dataclasses import dataclass
from typing import Iterator

STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: (.*))?")
HEADER_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*")
CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]+)(;.*)?")

# Failure guards, not paces: a correct server answers (or closes) long before these,
# even a sanitizer build on a loaded machine; they only bound how long a failing test
# hangs. Nothing here waits for a fixed time.
DEFAULT_TIMEOUT = 15.0
CLOSE_TIMEOUT = 10.0


class NoResponse(AssertionError):
    """The server closed (or went silent) before sending a complete response head."""


@dataclass
class Response:
    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]]  # (lower-cased name, value) in wire order
    body: bytes = b""  # de-chunked body
    raw_head: bytes = b""
    raw_body: bytes = b""  # body bytes as framed on the wire
    chunks: list[int] | None = None  # chunk sizes when chunked
    complete: bool = True  # framing finished (CL reached, last chunk read, or EOF-delimited)
    closed: bool | None = None  # set by exchange(check_closed=True): server closed afterwards

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def has_token(self, name: str, token: str) -> bool:
        """Whether a comma-separated header (Connection, Transfer-Encoding) lists `token`."""
        for v in self.header_all(name):
            if token.lower() in (t.strip().lower() for t in v.split(",")):
                return True
        return False

    @property
    def chunked(self) -> bool:
        return self.chunks is not None

    def __iter__(self) -> Iterator:
        """Unpack as (status, headers, body, closed)."""
        return iter((self.status, self.headers, self.body, self.closed))


def _no_body(status: int, method: str) -> bool:
    return method.upper() == "HEAD" or 100 <= status < 200 or status in (204, 304)


class RawConnection:
    """One client TCP connection with a read buffer; every read is bounded by a timeout."""

    def __init__(self, addr: tuple[str, int], timeout: float = DEFAULT_TIMEOUT) -> None:
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.reset = False

    # --- plumbing -------------------------------------------------------------
    def __enter__(self) -> "RawConnection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    @property
    def local_port(self) -> int:
        return self.sock.getsockname()[1]

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def try_send(self, data: bytes) -> bool:
        """Send, tolerating a server that already closed (it may answer early)."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def _fill(self, timeout: float | None = None) -> bool:
        """Read more into the buffer. False on EOF/reset. socket.timeout propagates."""
        if self.eof:
            return False
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            self.eof = self.reset = True
            return False
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _take(self, n: int) -> bytes:
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_exact(self, n: int) -> bytes:
        """Up to n bytes; fewer only if the peer closed first."""
        while len(self.buf) < n and self._fill():
            pass
        return self._take(n)

    def read_line(self) -> bytes | None:
        """One CRLF-terminated line without the CRLF; None at EOF before a full line."""
        while b"\r\n" not in self.buf:
            if not self._fill():
                return None
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def read_until_close(self) -> bytes:
        while self._fill():
            pass
        return self._take(len(self.buf))

    def recv_some(self, timeout: float) -> bytes | None:
        """Whatever arrives within `timeout`: bytes, b"" on EOF, None if nothing came."""
        if self.buf:
            return self._take(len(self.buf))
        try:
            if self._fill(timeout):
                return self._take(len(self.buf))
            return b""
        except socket.timeout:
            return None

    def wait_closed(self, timeout: float = CLOSE_TIMEOUT) -> bool:
        """True if the server closes (FIN or RST) within `timeout` without sending more."""
        if self.buf:
            return False  # stray bytes after the response
        try:
            return not self._fill(timeout)
        except socket.timeout:
            return False

    # --- responses ------------------------------------------------------------
    def read_head(self) -> tuple[bytes, Response]:
        while b"\r\n\r\n" not in self.buf:
            try:
                more = self._fill()
            except socket.timeout:
                raise NoResponse(f"no complete response head within {self.timeout}s; got {self.buf!r}")
            if not more:
                how = "reset" if self.reset else "closed"
                raise NoResponse(f"server {how} the connection before a complete response head; got {self.buf!r}")
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        m = STATUS_LINE.fullmatch(lines[0])
        assert m, f"malformed status line {lines[0]!r}"
        headers = []
        for line in lines[1:]:
            hm = HEADER_LINE.fullmatch(line)
            assert hm, f"malformed response header line {line!r} in {head!r}"
            headers.append((hm.group(1).decode("latin-1").lower(), hm.group(2).decode("latin-1")))
        resp = Response(
            status=int(m.group(3)),
            reason=(m.group(4) or b"").decode("latin-1"),
            version=f"{m.group(1).decode()}.{m.group(2).decode()}",
            headers=headers,
            raw_head=head + b"\r\n\r\n",
        )
        return head, resp

    def read_response(self, method: str = "GET", skip_interim: bool = False) -> Response:
        """Read one response (a 1xx counts as one unless `skip_interim`)."""
        while True:
            _, resp = self.read_head()
            if not (skip_interim and 100 <= resp.status < 200 and resp.status != 101):
                break
        if _no_body(resp.status, method) or resp.status == 101:
            return resp
        te = resp.header_all("transfer-encoding")
        cl = resp.header_all("content-length")
        if te:
            assert not cl, f"response has both Transfer-Encoding and Content-Length: {resp.raw_head!r}"
            codings = [c.strip().lower() for c in ",".join(te).split(",")]
            if codings[-1] == "chunked":
                self._read_chunked(resp)
                return resp
            resp.raw_body = resp.body = self.read_until_close()
            return resp
        if cl:
            assert len(set(cl)) == 1 and cl[0].isdigit(), f"bad Content-Length in response: {cl}"
            n = int(cl[0])
            resp.raw_body = resp.body = self.read_exact(n)
            resp.complete = len(resp.body) == n
            return resp
        resp.raw_body = resp.body = self.read_until_close()
        return resp

    def _read_chunked(self, resp: Response) -> None:
        raw, body, sizes = bytearray(), bytearray(), []
        resp.complete = False
        resp.chunks = sizes
        try:
            while True:
                line = self.read_line()
                if line is None:
                    return
                raw += line + b"\r\n"
                m = CHUNK_SIZE.fullmatch(line)
                assert m, f"malformed chunk-size line {line!r}"
                size = int(m.group(1), 16)
                if size == 0:
                    while True:  # trailer section
                        t = self.read_line()
                        if t is None:
                            return
                        raw += t + b"\r\n"
                        if t == b"":
                            resp.complete = True
                            return
                sizes.append(size)
                data = self.read_exact(size)
                raw += data
                body += data
                if len(data) < size:
                    return
                crlf = self.read_exact(2)
                raw += crlf
                if len(crlf) < 2:
                    return
                assert crlf == b"\r\n", f"chunk data not followed by CRLF: {bytes(raw[-40:])!r}"
        finally:
            resp.raw_body, resp.body = bytes(raw), bytes(body)


# --- request builders --------------------------------------------------------

def request(
    method: str = "GET",
    target: str = "/",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    version: str = "HTTP/1.1",
    host: str | None = "test",
    content_length: bool | None = None,
) -> bytes:
    """A well-formed request; Content-Length is added when there is a body."""
    lines = [f"{method} {target} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    for k, v in headers or []:
        lines.append(f"{k}: {v}")
    if content_length or (content_length is None and body):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(*parts: bytes, trailers: bytes = b"") -> bytes:
    """Chunked framing of `parts` (empty parts skipped) plus the last chunk."""
    out = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p)
    return out + b"0\r\n" + trailers + b"\r\n"


def first_method(raw: bytes) -> str:
    return raw.lstrip(b"\r\n").split(b" ", 1)[0].decode("latin-1")


# --- one-shot helpers --------------------------------------------------------

def exchange(
    addr: tuple[str, int],
    raw: bytes,
    *,
    method: str | None = None,
    check_closed: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    close_timeout: float = CLOSE_TIMEOUT,
) -> Response:
    """Open a connection, send `raw`, read one final response.

    With `check_closed`, `closed` tells whether the server closed the connection
    right after the response (within `close_timeout`, without further bytes).
    Unpacks as (status, headers, body, closed).
    """
    with RawConnection(addr, timeout) as conn:
        conn.try_send(raw)
        resp = conn.read_response(method or first_method(raw), skip_interim=True)
        if check_closed:
            resp.closed = conn.wait_closed(close_timeout)
        return resp


def get(addr: tuple[str, int], target: str = "/", **kw) -> Response:
    return exchange(addr, request("GET", target, headers=[("Connection", "close")]), **kw)


def assert_alive(addr: tuple[str, int], target: str = "/", body: bytes | None = None) -> Response:
    """The server still answers a normal request with 200 on a fresh connection."""
    resp = exchange(addr, request("GET", target), check_closed=False)
    assert resp.status == 200, f"server no longer answers normally: {resp.status} {resp.body[:200]!r}"
    if body is not None:
        assert resp.body == body
    return resp


def wait_for_file(path, timeout: float = 20.0) -> str:
    """Content of a report file an app writes (atomically, via rename) when it appears."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise AssertionError(f"app wrote no report to {path} within {timeout}s")
        time.sleep(0.01)
    with open(path, encoding="utf-8") as f:
        return f.read()


# --- server-side observations (stats line, log records, memory) ------------------

import json  # noqa: E402 (helpers appended below)

STATS_MARK = "narwhal stats: "


def _stats_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        if STATS_MARK not in line:
            continue
        if line.lstrip().startswith("{"):  # --log-format json: the stats line is in "message"
            try:
                line = json.loads(line).get("message", "")
            except ValueError:
                pass
        out.append(json.loads(line.split(STATS_MARK, 1)[1]))
    return out


def server_stats(server, timeout: float = 20.0) -> dict:
    """Send SIGUSR1 and return the JSON object of the `narwhal stats:` line it logs."""
    import signal as _signal
    before = len(_stats_lines(server.log()))
    server.signal(_signal.SIGUSR1)
    with server._changed:
        ok = server._changed.wait_for(
            lambda: len(_stats_lines("".join(server._lines))) > before or server.proc.poll() is not None, timeout)
    lines = _stats_lines(server.log())
    assert ok and len(lines) > before, f"no 'narwhal stats:' line within {timeout}s of SIGUSR1:\n{server.log()}"
    return lines[before]


# A text line starts with its timestamp: "2026-12-01 14:31:22.123 INFO:     ...".
LOG_START = re.compile(
    r"^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} )?(TRACE|DEBUG|INFO|WARNING|ERROR|CRITICAL):|^\{|^overload_apps: ")


def log_records(text: str, needle: str) -> list[str]:
    """Every log record with `needle` in its first line, with its continuation lines
    (a traceback / stack under it: lines that do not start a new record)."""
    records: list[list[str]] = []
    for line in text.splitlines():
        if LOG_START.match(line) or not records:
            records.append([line])
        else:
            records[-1].append(line)
    return ["\n".join(r) for r in records if needle in r[0]]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


class RssSampler:
    """Sample a process's VmRSS every `interval` s in a thread; `peak` in KiB."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        import threading
        self.pid, self.interval = pid, interval
        self.peak = rss_kib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.peak = max(self.peak, rss_kib(self.pid))
            except (OSError, AssertionError):
                return

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        try:
            self.peak = max(self.peak, rss_kib(self.pid))
        except (OSError, AssertionError):
            pass
