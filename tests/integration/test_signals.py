"""Signals as the app sees them: a write to a closed pipe raises BrokenPipeError instead
of killing the server, and signal.getsignal() answers what it answers in a plain
`python` process, except for the signals narwhal owns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx

from conftest import APPS_DIR

TIMEOUT = httpx.Timeout(30.0)
# Handled by narwhal's C++ side (docs/architecture.md, "Signals"): SIGINT and SIGTERM
# stop the server, SIGUSR1 logs the counters.
OWNED = {"SIGINT", "SIGTERM", "SIGUSR1"}


def _without_sanitizer_handlers() -> dict[str, str]:
    """A sanitizer build's runtime installs its own SIGSEGV/SIGBUS/SIGFPE handlers (to
    report crashes); told not to, the binary shows the dispositions narwhal leaves."""
    env = {}
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if var in os.environ:
            env[var] = os.environ[var] + ":handle_segv=0:handle_sigbus=0:handle_sigfpe=0"
    return env


def _get(server, path: str) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        return c.get(path)


def test_write_to_closed_pipe_raises_broken_pipe_error(narwhal):
    server = narwhal("process_apps:app")
    r = _get(server, "/broken-pipe")
    assert r.status_code == 200, server.log()
    assert r.json() == "BrokenPipeError", server.log()
    # The server lives on and serves the next request.
    again = _get(server, "/")
    assert again.status_code == 200 and again.json() == "ok", server.log()
    assert server.proc.poll() is None, server.log()
    assert server.stop() == 0, server.log()


def test_signal_dispositions_match_plain_python(narwhal):
    server = narwhal("process_apps:app", env=_without_sanitizer_handlers())
    in_app = _get(server, "/signals").json()
    # Started the way the server was (from this process, same inherited dispositions).
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); "
            "from process_apps import describe_signals; print(json.dumps(describe_signals()))")
    plain = json.loads(subprocess.run(
        [sys.executable, "-c", code, str(APPS_DIR)], capture_output=True, text=True,
        timeout=60, check=True, stdin=subprocess.DEVNULL).stdout)
    assert plain["SIGPIPE"] == "SIG_IGN", plain  # what CPython's start-up sets
    assert set(in_app) == set(plain)
    differ = {name: (in_app[name], plain[name]) for name in plain
              if name not in OWNED and in_app[name] != plain[name]}
    assert differ == {}, f"(in the app, in python) per signal: {differ}"
    assert server.stop(signal.SIGINT) == 0, server.log()
