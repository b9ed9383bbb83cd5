"""A minimal client side of WebSocket for raw-socket tests: masked frames out, server
frames in, and a handshake on a socket with a small receive buffer (a client that reads
slowly, or not at all)."""

from __future__ import annotations

import base64
import os
import socket
import struct

from rawhttp import RawConnection


def encode_frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_frame(conn: RawConnection) -> tuple[int, bytes] | None:
    """(opcode, payload) of the next server frame; None at EOF. Server frames are unmasked."""
    hdr = conn.read_exact(2)
    if len(hdr) < 2:
        return None
    opcode, n = hdr[0] & 0x0F, hdr[1] & 0x7F
    assert not hdr[1] & 0x80, "server frame is masked"
    if n == 126:
        n = struct.unpack("!H", conn.read_exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", conn.read_exact(8))[0]
    payload = conn.read_exact(n)
    assert len(payload) == n, f"frame cut short: {len(payload)} of {n} bytes"
    return opcode, payload


def raw_upgrade(server, path: str, timeout: float = 20.0) -> socket.socket:
    """A handshake on a raw socket with a small receive buffer, the 101 read."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(timeout)
    sock.connect(server.addr)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                 f"Sec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def read_until_close_frame(sock: socket.socket) -> bytes:
    """Read server frames from a raw socket until a close frame; return its payload."""
    buf = bytearray()

    def need(n: int) -> None:
        while len(buf) < n:
            chunk = sock.recv(1 << 20)
            assert chunk, f"EOF before a close frame ({len(buf)} bytes of a frame pending)"
            buf.extend(chunk)

    while True:
        need(2)
        opcode, n, head = buf[0] & 0x0F, buf[1] & 0x7F, 2
        assert not buf[1] & 0x80, "server frame is masked"
        if n == 126:
            need(4)
            n, head = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            need(10)
            n, head = struct.unpack("!Q", buf[2:10])[0], 10
        need(head + n)
        payload = bytes(buf[head:head + n])
        del buf[:head + n]
        if opcode == 0x8:
            return payload
        assert opcode in (0x0, 0x1, 0x2), f"unexpected opcode {opcode:#x} before the close"
