"""The HTTP load scenarios: which app, which request, which answer counts as right.

Shared by compare.py (wrk) and instructions.py (callgrind): one place says what a
scenario sends, so both tools measure the same thing. Not a script itself.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from harness import REPO

HELLO = b"Hello, world!"
ECHO_BODY = b"x" * 4096  # what post4k.lua sends: string.rep("x", 4096)
FILE_1M = random.Random(1).randbytes(1024 * 1024)  # apps/file_app.py's file (SIZE, SEED)


def lua_body(script: str) -> bytes:
    """The literal `wrk.body = '...'` of a wrk script: the script is the source of truth."""
    text = (REPO / script).read_text()
    m = re.search(r"^wrk\.body\s*=\s*'([^']*)'", text, re.M)
    if not m:
        raise ValueError(f"{script}: no single-quoted wrk.body literal")
    return m.group(1).encode()


@dataclass(frozen=True)
class Scenario:
    name: str
    module: str  # in loadtests/apps; the ASGI callable is `app`
    path: str = "/"
    method: str = "GET"
    wrk_script: Optional[str] = None  # sets method, body and headers for wrk
    content_type: Optional[str] = None
    framework: Optional[str] = None  # a framework whose version matters (venv vs Debian)
    answer: Optional[bytes] = HELLO  # the exact body expected; None: the request body back
    answer_is_json: bool = False  # compare as JSON (key order and spacing are the framework's)
    fixed_body: Optional[bytes] = None  # the request body, when no wrk.body literal gives it

    @property
    def body(self) -> bytes:
        if self.fixed_body is not None:
            return self.fixed_body
        return lua_body(self.wrk_script) if self.wrk_script else b""

    def check(self, status: int, body: bytes) -> Optional[str]:
        """None when the answer is right, else what is wrong with it."""
        if status != 200:
            return f"status {status}, body {body[:80]!r}"
        want = self.body if self.answer is None else self.answer
        if self.answer_is_json:
            try:
                ok = json.loads(body) == json.loads(want)
            except ValueError:
                ok = False
        else:
            ok = body == want
        return None if ok else f"unexpected body {body[:80]!r}"

    def request(self, host: str, port: int) -> bytes:
        """The request as wrk sends it (Host with the port, Content-Length when a body)."""
        head = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}:{port}"]
        body = self.body
        if self.content_type:
            head.append(f"Content-Type: {self.content_type}")
        if body or self.method == "POST":
            head.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("plaintext", "plaintext"),
    Scenario("json", "json_app", answer=b'{"message": "Hello, world!"}'),
    Scenario("echo4k", "echo", method="POST", wrk_script="loadtests/post4k.lua",
             content_type="application/octet-stream", answer=None, fixed_body=ECHO_BODY),
    Scenario("starlette", "starlette_app", framework="starlette"),
    Scenario("fastapi", "fastapi_app", path="/items", method="POST",
             wrk_script="loadtests/fastapi_item.lua", content_type="application/json",
             framework="fastapi", answer=None, answer_is_json=True),
    # Starlette's FileResponse: http.response.pathsend where the server offers it.
    Scenario("file1m", "file_app", framework="starlette", answer=FILE_1M),
)}
