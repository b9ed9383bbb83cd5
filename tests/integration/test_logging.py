"""One logging pipeline, as under uvicorn: Python's `logging` knows uvicorn's loggers,
narwhal's records reach them, --log-config hands the output to the user's handlers.

Real binary, real HTTP requests, apps that use `logging` (apps/logging_apps.py). Every
text line starts with a millisecond timestamp; --log-format json turns the app's own
records and prints into JSON objects too; level names are colored on a terminal only
(checked through a pseudo-terminal).
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import rawhttp
from conftest import APPS_DIR, NARWHAL_BIN, READY, run_cli

GUARD = 20.0  # failure guard for every wait
# The line prefix without its separating space (the patterns below spell the space).
TIMESTAMP = rawhttp.TIMESTAMP.rstrip()


def get(server, path: str) -> bytes:
    with urllib.request.urlopen(f"{server.url}{path}", timeout=GUARD) as resp:
        assert resp.status == 200
        return resp.read()


def wait_until(check, what: str, server=None):
    """Polls `check` (a condition, not a timing) until it returns a true value."""
    deadline = time.monotonic() + GUARD
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"{what} within {GUARD}s" + (f":\n{server.log()}" if server else ""))


def lines_with(server, needle: str) -> list[str]:
    return [line for line in server.log().splitlines() if needle in line]


# --- the default configuration ----------------------------------------------------------


def test_text_lines_carry_a_timestamp(narwhal):
    server = narwhal("logging_apps:app")
    get(server, "/stamp")
    line = server.wait_for_log(r'"GET /stamp HTTP/1\.1" 200').string
    assert re.match(rf"{TIMESTAMP} INFO:     127\.0\.0\.1:\d+ - \"GET /stamp HTTP/1\.1\" 200 OK$",
                    line.rstrip("\n")), line
    running = server.wait_for_log(r"narwhal running on").string
    assert re.match(rf"{TIMESTAMP} INFO:     narwhal running on ", running), running


def test_uvicorn_loggers_exist_with_uvicorn_defaults(narwhal):
    server = narwhal("logging_apps:app", "--log-level", "debug")
    seen = json.loads(get(server, "/loggers"))
    assert all(seen[name]["known"] for name in ("uvicorn", "uvicorn.error", "uvicorn.access")), seen
    assert seen["uvicorn"]["handlers"] == 1 and seen["uvicorn"]["propagate"] is False
    assert seen["uvicorn.error"]["propagate"] is True  # into "uvicorn", as in uvicorn
    assert seen["uvicorn.error"]["level"] == 10  # --log-level debug
    assert seen["uvicorn.access"]["handlers"] == 1
    assert seen["uvicorn.access"]["propagate"] is False
    # A print() to stderr is one write, never split by an access line from another thread.
    assert seen["stderr"] == {"line_buffering": True, "write_through": False}, seen


def test_app_records_come_out_in_narwhal_format(narwhal):
    server = narwhal("logging_apps:app")
    get(server, "/log")
    # Root and an app logger without handlers: narwhal's line, not Python's bare print.
    server.wait_for_log(rf"{TIMESTAMP} WARNING:  from-root warning$")
    server.wait_for_log(rf"{TIMESTAMP} ERROR:    from-myapp error$")
    # uvicorn's loggers: not lost, whatever the level of the root logger.
    server.wait_for_log(rf"{TIMESTAMP} INFO:     from-uvicorn-error info$")
    server.wait_for_log(rf"{TIMESTAMP} INFO:     from-uvicorn-access info$")


def test_app_basic_config_still_applies(narwhal):
    """narwhal's handler on the root logger does not turn an app's basicConfig into a
    no-op."""
    server = narwhal("logging_basic_app:app")
    get(server, "/log")
    server.wait_for_log(r"^BASIC WARNING root from-root warning$")
    server.wait_for_log(r"^BASIC ERROR myapp\.db from-myapp error$")
    # uvicorn's loggers do not propagate to the root: narwhal's format, once.
    server.wait_for_log(rf"^{TIMESTAMP} INFO:     from-uvicorn-error info$")
    assert not lines_with(server, "BASIC INFO uvicorn"), server.log()


def test_app_handler_and_filter_on_uvicorn_access_see_every_access_line(narwhal):
    server = narwhal("logging_watch_app:app")
    paths = [f"/item/{i}" for i in range(20)]
    for path in paths:
        get(server, path)
    get(server, "/hidden")

    def kept():
        records = json.loads(get(server, "/seen"))
        got = {r["args"][2] for r in records if r["logger"] == "uvicorn.access" and r["args"]}
        return records if set(paths) <= got else None

    records = wait_until(kept, "the app's access handler did not see every access line", server)
    # The server's own start-up records reached the app's handler on "uvicorn.error".
    errors = [r["message"] for r in records if r["logger"] == "uvicorn.error"]
    assert any(m.startswith("Started server process") for m in errors), errors
    assert any(m.startswith("Application startup complete") for m in errors), errors
    assert any(m.startswith("narwhal running on http://127.0.0.1:") for m in errors), errors
    records = [r for r in records if r["logger"] == "uvicorn.access"]
    one = next(r for r in records if r["args"] and r["args"][2] == "/item/3")
    client, method, path, version, status = one["args"]
    assert (method, path, version, status) == ("GET", "/item/3", "1.1", 200)
    assert one["message"] == f'{client} - "GET /item/3 HTTP/1.1" 200'
    # The app's filter hides /hidden from every handler, narwhal's own included.
    assert not any(r["args"] and r["args"][2] == "/hidden" for r in records)
    # narwhal's handler still writes the others in its format.
    for path in paths:
        server.wait_for_log(rf'{TIMESTAMP} INFO:     127\.0\.0\.1:\d+ - "GET {path} HTTP/1\.1" 200')
    assert not lines_with(server, '"GET /hidden HTTP/1.1"'), server.log()


# --- --log-config -------------------------------------------------------------------------

CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"custom": {"format": "CUSTOM[%(name)s|%(levelname)s] %(message)s"}},
    "handlers": {"err": {"class": "logging.StreamHandler", "formatter": "custom",
                         "stream": "ext://sys.stderr"}},
    "loggers": {
        "uvicorn": {"handlers": ["err"], "level": "INFO", "propagate": False},
        "uvicorn.access": {"handlers": ["err"], "level": "INFO", "propagate": False},
    },
}

INI = """\
[loggers]
keys=root,uvicorn,access

[handlers]
keys=err

[formatters]
keys=custom

[logger_root]
level=WARNING
handlers=err

[logger_uvicorn]
level=INFO
handlers=err
propagate=0
qualname=uvicorn

[logger_access]
level=INFO
handlers=err
propagate=0
qualname=uvicorn.access

[handler_err]
class=StreamHandler
formatter=custom
args=(sys.stderr,)

[formatter_custom]
format=CUSTOM[%(name)s|%(levelname)s] %(message)s
"""


def write_config(tmp_path: Path, kind: str) -> Path:
    if kind == "json":
        path = tmp_path / "logging.json"
        path.write_text(json.dumps(CONFIG))
    elif kind == "yaml":
        yaml = pytest.importorskip("yaml")
        path = tmp_path / "logging.yaml"
        path.write_text(yaml.safe_dump(CONFIG))
    else:
        path = tmp_path / "logging.ini"
        path.write_text(INI)
    return path


@pytest.mark.parametrize("kind", ["json", "yaml", "ini"])
def test_log_config_decides_the_output(narwhal, tmp_path, kind):
    server = narwhal("logging_apps:app", "--log-config", str(write_config(tmp_path, kind)))
    get(server, "/configured")
    # narwhal's records, from C++ (start-up, access) and from Python, through the file's
    # formatter.
    server.wait_for_log(r"^CUSTOM\[uvicorn\.error\|INFO\] narwhal running on ")
    server.wait_for_log(r'^CUSTOM\[uvicorn\.access\|INFO\] 127\.0\.0\.1:\d+ - "GET /configured '
                        r'HTTP/1\.1" 200$')
    server.wait_for_log(r"^CUSTOM\[uvicorn\.error\|INFO\] Started server process")
    get(server, "/log")
    server.wait_for_log(r"^CUSTOM\[uvicorn\.error\|INFO\] from-uvicorn-error info$")
    assert server.stop() == 0
    assert lines_with(server, "CUSTOM[uvicorn.error|INFO] Finished server process"), server.log()
    # Nothing in narwhal's own format once Python runs (only configuration warnings come
    # before it): the file decides.
    after = server.log().split("Started server process", 1)[1]
    assert not re.search(rf"^{TIMESTAMP} ", after, re.M), server.log()


def test_log_config_missing_file_is_a_config_error(tmp_path):
    missing = tmp_path / "nope.yaml"
    r = run_cli("logging_apps:app", "--app-dir", str(APPS_DIR), "--log-config", str(missing))
    assert r.returncode == 2, r
    assert f"--log-config: no such file '{missing}'" in r.stderr


def test_log_config_broken_file_stops_start_up(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 1, "handlers": {"h": {"class": "no.such.Handler"}}}))
    r = run_cli("logging_apps:app", "--app-dir", str(APPS_DIR), "--port", "0",
                "--log-config", str(bad), timeout=60)
    assert r.returncode == 1, r
    assert f"--log-config {bad}: ValueError" in r.stderr, r.stderr
    assert "running on" not in r.stderr


def test_log_config_yaml_without_pyyaml_in_venv(tmp_path):
    """A --venv whose Python cannot import yaml: a clear error, before serving."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    config = tmp_path / "logging.yaml"
    config.write_text("version: 1\n")
    # Hide the system's PyYAML from the embedded interpreter, as a venv without it is.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "yaml.py").write_text("raise ImportError('No module named yaml')\n")
    r = run_cli("logging_apps:app", "--app-dir", str(APPS_DIR), "--port", "0", "--venv",
                str(venv), "--log-config", str(config), env={"PYTHONPATH": str(shadow)},
                timeout=60)
    assert r.returncode == 1, r
    assert "a YAML file needs PyYAML, which is not importable in the virtualenv" in r.stderr, r.stderr
    assert "python3-yaml" in r.stderr


def test_log_config_slow_handler_drops_and_counts(narwhal, tmp_path):
    """A handler that blocks: I/O threads keep serving, the queue into Python fills up,
    the overflow is dropped and its count reported once the handler moves again."""
    config = dict(CONFIG)
    config["handlers"] = {"err": {"class": "logging_apps.HoldingHandler", "formatter": "custom",
                                  "stream": "ext://sys.stderr"}}
    path = tmp_path / "holding.json"
    path.write_text(json.dumps(config))
    server = narwhal("logging_apps:app", "--log-config", str(path))
    get(server, "/hold")  # its access line is the one the handler holds
    total = 10_300  # beyond the 10000 records the queue holds
    answered = pipeline(server, total)
    assert answered == total  # every request served while Python's logging was stuck
    get(server, "/release")
    server.wait_for_log(r"CUSTOM\[uvicorn\.error\|WARNING\] \d+ log records dropped: ")
    # /release's own line may come while the queue is still full; what follows flows again.
    get(server, "/after")
    server.wait_for_log(r'CUSTOM\[uvicorn\.access\|INFO\] 127\.0\.0\.1:\d+ - "GET /after HTTP/1\.1" 200')
    # Every record is either delivered or counted as dropped. The delivery thread may have
    # taken a few /p lines together with the one it is stuck on, so the split between the
    # two is not exact; the sum is. The full queue itself delivers all 10000.
    def counts() -> tuple[int, int]:
        log = server.log()
        return (len(re.findall(r'"GET /p HTTP/1\.1" 200', log)),
                sum(int(n) for n in re.findall(r"\] (\d+) log records dropped: ", log)))

    wait_until(lambda: sum(counts()) >= total, "every /p record delivered or counted", server)
    delivered, dropped = counts()
    assert dropped > 0 and delivered >= 10_000, (delivered, dropped)
    assert total <= delivered + dropped <= total + 1, (delivered, dropped)  # + /release's line


def pipeline(server, count: int) -> int:
    """Sends `count` pipelined GETs on one connection; returns how many 200s came back."""
    import socket
    import threading

    request = b"GET /p HTTP/1.1\r\nhost: t\r\n\r\n"
    with socket.create_connection(server.addr, timeout=GUARD) as sock:
        sender = threading.Thread(target=sock.sendall, args=(request * count,), daemon=True)
        sender.start()
        marker = b"HTTP/1.1 200 "
        pending = b""
        answered = 0
        while answered < count:
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            pending += chunk
            answered += pending.count(marker)
            last = pending.rfind(marker)
            if last >= 0:
                pending = pending[last + len(marker):]
            pending = pending[-(len(marker) - 1):]  # a marker split across reads
        sender.join(GUARD)
    return answered


# --- --log-format json --------------------------------------------------------------------


def test_json_app_records_and_prints_are_json_objects(narwhal):
    server = narwhal("logging_apps:app", "--log-format", "json")
    get(server, "/log")
    wait_until(lambda: lines_with(server, "from-print stderr"), "the printed stderr line", server)
    wait_until(lambda: lines_with(server, '"GET /log HTTP/1.1'), "the access line", server)
    records = []
    for line in server.log().splitlines():
        obj = json.loads(line)  # every line is one JSON object, prints included
        assert {"level", "logger", "message", "timestamp"} <= obj.keys(), line
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$", obj["timestamp"])
        records.append(obj)
    by_message = {r["message"]: r for r in records}
    assert by_message["from-root warning"]["logger"] == "root"
    assert by_message["from-root warning"]["level"] == "warning"
    assert by_message["from-myapp error"]["logger"] == "myapp.db"
    assert by_message["from-myapp error"]["level"] == "error"
    assert by_message["from-uvicorn-error info"]["logger"] == "uvicorn.error"
    assert by_message["from-print stdout"]["logger"] == "stdout"
    assert by_message["from-print stderr"]["logger"] == "stderr"
    access = [r for r in records if r["logger"] == "uvicorn.access" and "GET /log" in r["message"]]
    assert access and access[0]["level"] == "info"


# --- colors -------------------------------------------------------------------------------


def run_on_pty(*flags: str) -> str:
    """Starts narwhal with stderr on a pseudo-terminal, makes one request, stops it by PID;
    returns everything it wrote."""
    master, slave = pty.openpty()
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    env.pop("NARWHAL_BIN", None)
    proc = subprocess.Popen([NARWHAL_BIN, "logging_apps:app", "--app-dir", str(APPS_DIR),
                             "--host", "127.0.0.1", "--port", "0", *flags],
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + 60
        plain = ""
        while not READY.search(plain):
            assert time.monotonic() < deadline and proc.poll() is None, out
            if select.select([master], [], [], 0.5)[0]:
                out += os.read(master, 65536)
            plain = re.sub(r"\x1b\[[0-9;]*m", "", out.decode("utf-8", "replace"))
        m = READY.search(plain)
        with urllib.request.urlopen(f"http://{m.group('host')}:{m.group('port')}/tty",
                                    timeout=GUARD):
            pass
        while b"GET /tty" not in out:
            assert time.monotonic() < deadline, out
            if select.select([master], [], [], 0.5)[0]:
                out += os.read(master, 65536)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
        os.close(master)
    return out.decode("utf-8", "replace")


def test_colored_level_names_on_a_terminal():
    out = run_on_pty()
    assert "\x1b[32mINFO\x1b[0m:     narwhal running on" in out, repr(out)
    assert re.search(r'\x1b\[32mINFO\x1b\[0m:     127\.0\.0\.1:\d+ - "GET /tty', out), repr(out)


def test_no_use_colors_on_a_terminal():
    out = run_on_pty("--no-use-colors")
    assert "INFO:     narwhal running on" in out
    assert "\x1b[" not in out, repr(out)


def test_no_colors_into_a_pipe(narwhal):
    server = narwhal("logging_apps:app", "--use-colors")
    get(server, "/pipe")
    server.wait_for_log(r'"GET /pipe HTTP/1\.1" 200')
    assert "\x1b[" not in server.log(), repr(server.log())
