"""TLS for compare.py: the run's certificate, the client-side checks, the handshake modes,
the full-handshake client and what the Markdown report says about them. Not a script
itself.

One certificate per run, made with the openssl CLI in the run's temporary directory:
a self-signed ECDSA P-256 certificate for CN localhost with the subject alternative
names localhost and 127.0.0.1, its key in PKCS#8 PEM (granian reads no other format).
Every server gets the same pair, and the checks verify the served certificate against
it (hostname 127.0.0.1 included), so a server that answers with another certificate, or
without TLS, is a problem rather than a number.

How a request meets TLS (the mode, part of the scenario's name in the tables):
* keepalive  `<scenario>+tls`: wrk over HTTPS; each connection does one handshake and
             then carries many requests, so this is the cost of encrypting them.
* resumed    `<scenario>+tls-resumed`: wrk with `Connection: close`, so every request
             opens a new TCP and TLS connection. wrk keeps the TLS session of the
             connection before (it calls SSL_shutdown, then SSL_clear, which keeps the
             session) and offers it again: the new connection is a session resumption
             (TLS 1.3 PSK with a fresh ECDHE share, no certificate) wherever the server
             issues session tickets. `session_facts` checks whether it does.
* full       `<scenario>+tls-full`: one `openssl s_time -new` process per connection,
             each opening one connection after the other, each with a full handshake
             (certificate, signature, ECDHE), sending `GET <path> HTTP/1.0` and reading
             the answer until the server closes. GET scenarios only (s_time sends no
             body).
"""

from __future__ import annotations

import re
import shlex
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from harness import HOST, REPO, fmt

MODES = ("keepalive", "full", "resumed")
HANDSHAKE_MODES = ("full", "resumed")
SUFFIX = {"keepalive": "+tls", "full": "+tls-full", "resumed": "+tls-resumed"}
CERT_DAYS = 7  # one run's certificate: a week outlasts any run


@dataclass(frozen=True)
class TlsFiles:
    """The run's certificate and key (PEM files) and the command that made them."""
    cert: Path
    key: Path
    command: str


def make_certificate(directory: Path) -> TlsFiles:
    """A self-signed ECDSA P-256 certificate for localhost and 127.0.0.1 in `directory`."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    argv = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", str(CERT_DAYS),
            "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    print(f"$ {shlex.join(argv)}", flush=True)
    subprocess.run(argv, check=True, capture_output=True)
    return TlsFiles(cert, key, shlex.join(argv))


def client_context(files: TlsFiles) -> ssl.SSLContext:
    """Verifies the server against the run's certificate, hostname 127.0.0.1 included."""
    ctx = ssl.create_default_context(cafile=str(files.cert))
    ctx.check_hostname = True
    return ctx


def label(scenario: str, mode: Optional[str]) -> str:
    """The scenario's name in the tables: `plaintext`, `plaintext+tls`, `plaintext+tls-full`."""
    return scenario + (SUFFIX[mode] if mode else "")


def is_handshake(scenario_label: str) -> bool:
    """Whether the rows of this label count one new connection per request."""
    return scenario_label.endswith((SUFFIX["full"], SUFFIX["resumed"]))


def mode_skip(mode: Optional[str], method: str) -> Optional[str]:
    if mode == "full" and method != "GET":
        return "the full-handshake client (openssl s_time) sends GET requests only"
    return None


# ---------------------------------------------------------------- checks

def _get(ctx: ssl.SSLContext, port: int, path: str,
         session: Optional[ssl.SSLSession] = None) -> tuple[dict, ssl.SSLSession]:
    """One `Connection: close` GET on a new TLS connection: what it negotiated (read before
    the socket closes, which forgets it) and its session, for the next connection."""
    raw = socket.create_connection((HOST, port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname=HOST, session=session) as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                    f"Connection: close\r\n\r\n".encode())
        answer = b""
        while chunk := tls.recv(65536):  # TLS 1.3 tickets arrive while we read
            answer += chunk
        if not answer.startswith(b"HTTP/1."):  # any status: the request check is compare.py's
            raise ValueError(f"GET {path} over TLS answered {answer[:60]!r}")
        facts = {"version": tls.version(), "cipher": (tls.cipher() or ("?",))[0],
                 "reused": tls.session_reused}
        return facts, tls.session


def session_facts(files: TlsFiles, port: int, path: str) -> dict:
    """What a client negotiates with the server: protocol, cipher suite, and whether a
    second connection resumes the first one's session (what wrk's reconnects do)."""
    ctx = client_context(files)
    first, session = _get(ctx, port, path)
    second, _ = _get(ctx, port, path, session)
    return {"version": first["version"], "cipher": first["cipher"],
            "resumes": second["reused"]}


def describe_session(facts: dict) -> str:
    resumes = "resumes sessions" if facts.get("resumes") else "does not resume sessions"
    return f"{facts.get('version')}, {facts.get('cipher')}, {resumes}"


# ---------------------------------------------------------------- report

def tls_markdown(rows: list[dict], meta: dict) -> list[str]:
    """What the TLS rows measured: the certificate, what each server negotiated, and for
    the handshake rows what a request is (README.md, TLS)."""
    if not meta.get("tls"):
        return []
    out = ["", f"TLS: every server serves one self-signed ECDSA P-256 certificate (CN "
           f"localhost, SAN localhost and 127.0.0.1), made at start with "
           f"`{meta['tls']['certificate_command']}`. What a Python client "
           f"({meta['tls'].get('client_openssl', 'OpenSSL')}) negotiated with each:", ""]
    out += [f"* {server}: {describe_session(facts)}"
            for server, facts in meta["tls"].get("sessions", {}).items()]
    labels = {r["scenario"] for r in rows}
    if any(lb.endswith("+tls-full") for lb in labels):
        out += ["", "`+tls-full` rows: every request on a new connection with a full "
                "handshake (`openssl s_time -new`, one process per connection, "
                "`GET ... HTTP/1.0`): req/s = handshakes/s, CPU µs/req = server CPU per "
                "handshake; no latency percentiles."]
    if any(lb.endswith("+tls-resumed") for lb in labels):
        out += ["", "`+tls-resumed` rows: every request on a new connection (wrk with "
                "`Connection: close`), which resumes the previous connection's TLS session "
                "where the server allows it (above): req/s = handshakes/s, CPU µs/req = "
                "server CPU per resumed handshake."]
    if any(is_handshake(lb) for lb in labels):
        opened = [f"{r['server']} {fmt(r.get('conns_per_req'), 2)} ({r['scenario']}, "
                  f"c={r['connections']})" for r in rows
                  if is_handshake(r["scenario"]) and "skipped" not in r]
        out += ["", "TCP connections opened per request during the handshake runs "
                "(machine-wide, so other programs add to it): " + ", ".join(opened) + "."]
    return out


# ---------------------------------------------------------------- full handshakes

def s_time_argv(port: int, duration: int, path: str, files: TlsFiles) -> list[str]:
    """s_time runs until time(NULL) passes its start second + -time, so started just after
    a second begins, `-time D-1` runs D seconds. -CAfile: the run's certificate verifies
    (as a real client's would), and s_time does not parse the system's CA bundle at start,
    which costs OpenSSL 3 more CPU than hundreds of handshakes."""
    return ["openssl", "s_time", "-connect", f"{HOST}:{port}", "-new",
            "-time", str(max(duration - 1, 1)), "-www", path, "-CAfile", str(files.cert)]


_S_TIME = re.compile(r"^(\d+) connections in [\d.]+ real seconds, (\d+) bytes read per connection",
                     re.M)


def run_s_time(port: int, clients: int, duration: int, path: str, files: TlsFiles) -> dict:
    """`clients` s_time processes at once; requests = the connections they completed,
    rps over the wall time from the first start to the last exit.

    s_time's clock is whole seconds (s_time_argv): the clients start just after a second
    begins, and all that start within that second stop together `duration` seconds later
    (one started in the next second, on a busy machine, runs a second longer). Forking
    dozens of processes takes longer than that on a busy machine, so each waits in a
    shell for a line on its stdin and becomes s_time when it comes."""
    argv = ["sh", "-c", 'read go && exec "$@"', "sh", *s_time_argv(port, duration, path, files)]
    procs = [subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.PIPE, text=True) for _ in range(clients)]
    time.sleep(1.0 - time.time() % 1.0 + 0.005)
    start = time.monotonic()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.close()
    outputs = []
    for proc in procs:  # one "*" per connection: a pipe's buffer holds minutes of them
        assert proc.stdout is not None
        outputs.append(proc.stdout.read())
        proc.wait(timeout=60)
    elapsed = time.monotonic() - start
    requests, failed, empty, last_error = 0, 0, 0, ""
    for proc, out in zip(procs, outputs):
        m = _S_TIME.search(out)
        if proc.returncode != 0 or not m:
            failed += 1
            last_error = out.replace("*", "").strip()[-300:]
            continue
        requests += int(m[1])
        empty += int(m[2]) == 0
    res: dict = {"rps": requests / elapsed if requests else None, "p50_ms": None,
                 "p99_ms": None, "requests": requests, "non2xx": 0, "socket_errors": failed,
                 "clients": clients, "elapsed_s": elapsed}
    if failed or empty:
        res["error"] = (f"{failed} of {clients} s_time clients failed, {empty} read nothing: "
                        f"{last_error}")
    return res
