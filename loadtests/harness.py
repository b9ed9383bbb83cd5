"""Helpers shared by the load-test scripts in this folder (not a script itself).

Servers run on a free 127.0.0.1 port in their own session, are polled for readiness
by connect and stopped by PID; CPU and memory are read from /proc for the server
process and its descendants. Scripts run as `/usr/bin/python3 loadtests/x.py` have
this folder on sys.path, so they `import harness`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PYTHON = "/usr/bin/python3"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- /proc

def proc_times(kernel_only: bool = False) -> dict[tuple[int, int], tuple[int, int]]:
    """(pid, starttime) -> (ppid, utime+stime ticks) for every process; with
    `kernel_only`, stime alone (time in system calls)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                data = f.read()
        except OSError:
            continue  # exited meanwhile
        fields = data[data.rindex(")") + 2:].split()  # fields[0] is field 3 (state)
        ticks = int(fields[12]) if kernel_only else int(fields[11]) + int(fields[12])
        out[(int(entry), int(fields[19]))] = (int(fields[1]), ticks)
    return out


def tree_cpu(root: int, kernel_only: bool = False) -> dict[tuple[int, int], int]:
    """CPU ticks of root and all its descendants, keyed by (pid, starttime); with
    `kernel_only`, their kernel-mode ticks alone.

    /proc/<pid>/stat utime/stime already include all threads of the process.
    """
    procs = proc_times(kernel_only)
    children: dict[int, list[tuple[int, int]]] = {}
    for key, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(key)
    result, todo = {}, [k for k in procs if k[0] == root]
    while todo:
        key = todo.pop()
        result[key] = procs[key][1]
        todo.extend(children.get(key[0], []))
    return result


def cpu_delta_seconds(before: dict, after: dict) -> float:
    # processes that appeared during the run count from zero; ones that exited are lost
    ticks = sum(t - before.get(k, 0) for k, t in after.items())
    return ticks / CLK_TCK


def context_switches(pids) -> int:
    """Voluntary + involuntary context switches of every thread of these processes
    (/proc/<pid>/task/<tid>/status): how often the server's threads slept and woke, or were
    pushed off a core. Threads that exited meanwhile are not counted."""
    total = 0
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches:",
                                            "nonvoluntary_ctxt_switches:")):
                            total += int(line.split()[1])
            except (OSError, ValueError):
                continue
    return total


def tcp_active_opens() -> Optional[int]:
    """TCP connections this network namespace has opened so far (ActiveOpens, /proc/net/snmp):
    around a client run, how many connections it opened, plus any other program's."""
    try:
        with open("/proc/net/snmp") as f:
            rows = [line.split() for line in f if line.startswith("Tcp:")]
        return int(rows[1][rows[0].index("ActiveOpens")])
    except (OSError, IndexError, ValueError):
        return None


def descendants(root: int) -> list[int]:
    """root (even when already gone) and the pids of all its descendants."""
    return [root] + [pid for pid, _ in tree_cpu(root) if pid != root]


def status_kib(pid: int, field: str) -> Optional[int]:
    """A kB field of /proc/<pid>/status (VmRSS, VmHWM, ...), None if unreadable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def rss_bytes(pids: list[int]) -> int:
    """Summed VmRSS of the given processes (0 if none could be read)."""
    return 1024 * sum(status_kib(p, "VmRSS") or 0 for p in pids)


def listen_inodes(port: int) -> set[str]:
    """Socket inodes listening on `port` (any address, IPv4 or IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        found.add(fields[9])
        except (OSError, StopIteration):
            continue
    return found


def owns_listener(root: int, port: int) -> bool:
    """Whether root or one of its descendants holds the socket listening on `port`.

    A free port found by bind(0) is free again once we close it, and other programs on
    a shared machine pick ports the same way: a server that is slow to start (under
    valgrind, seconds) can find its port taken, and a connect would then reach the
    other program. Owning the listener is the proof that the server is ours."""
    inodes = listen_inodes(port)
    if not inodes:
        return False
    wanted = {f"socket:[{i}]" for i in inodes}
    for pid in descendants(root):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                        return True
                except OSError:
                    continue
        except OSError:
            continue
    return False


# ---------------------------------------------------------------- descriptors

def nofile_target() -> int:
    """The soft RLIMIT_NOFILE we ask for: the hard limit (1M if unlimited)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 20 if hard == resource.RLIM_INFINITY else hard


def raise_nofile() -> None:
    """Raise the soft descriptor limit to the hard one (here, in clients, in the servers)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = nofile_target()
    if soft == resource.RLIM_INFINITY or soft >= want:
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def ensure_nofile(needed: int) -> None:
    raise_nofile()
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        print(f"warning: descriptor limit {soft} < {needed}; raise the hard limit "
              f"(ulimit -Hn) or use fewer sockets", flush=True)


# ---------------------------------------------------------------- servers

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rel(path: Path) -> str:
    """Path as given to the server command; relative to the repo (our cwd) when inside it."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


@dataclass
class Server:
    name: str
    argv: list[str]
    port: int
    log: Path
    proc: Optional[subprocess.Popen] = None
    # (regex, count): also wait until the log has `count` matching lines (distinct values
    # of the first group, when the regex has one): every worker of a multi-process server
    ready: Optional[tuple[str, int]] = None
    raise_nofile: ClassVar[bool] = False  # start with the soft RLIMIT_NOFILE raised

    def start(self, timeout: float = 20.0) -> None:
        print(f"$ {shlex.join(self.argv)}", flush=True)
        with open(self.log, "wb") as logf:
            # own session: Ctrl-C in the terminal reaches only us; we stop it by PID
            self.proc = subprocess.Popen(self.argv, cwd=REPO, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=subprocess.STDOUT,
                                         start_new_session=True,
                                         preexec_fn=raise_nofile if self.raise_nofile else None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before "
                                   f"serving\n{self.log_tail()}")
            if owns_listener(self.proc.pid, self.port) and self.log_ready():
                try:
                    socket.create_connection((HOST, self.port), timeout=0.5).close()
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        other = " (another process holds it)" if listen_inodes(self.port) else ""
        waited = (f" and {self.ready[1]} log lines matching {self.ready[0]!r}"
                  if self.ready else "")
        raise RuntimeError(f"{self.name} not accepting on port {self.port}{other}{waited} "
                           f"after {timeout}s\n{self.log_tail()}")

    def log_ready(self) -> bool:
        """Whether the log shows every worker ready (always, without `ready`)."""
        if self.ready is None:
            return True
        pattern, count = self.ready
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return False
        found = [m.group(1) if m.groups() else m.start()
                 for m in re.finditer(pattern, text)]
        return len(set(found)) >= count

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"{self.name}: no exit {timeout}s after SIGTERM, sending SIGKILL", flush=True)
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, n: int = 20) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(f"  | {line}" for line in lines[-n:])


class WsServer(Server):
    """Server, started with a raised RLIMIT_NOFILE (preexec_fn in the child)."""

    raise_nofile = True


def problem(problems: list[str], text: str) -> None:
    problems.append(text)
    print(text, flush=True)


def try_start(srv: Server, label: str, problems: list[str], timeout: float = 20.0) -> bool:
    """Starts srv; on failure records `label: failed to start: ...`, stops it, False."""
    try:
        srv.start(timeout)
    except (OSError, RuntimeError) as e:
        problem(problems, f"{label}: failed to start: {e}")
        srv.stop()
        return False
    return True


def check_alive(srv: Server, label: str, problems: list[str]) -> None:
    if not srv.alive():
        assert srv.proc is not None
        problem(problems, f"{label}: server died (rc={srv.proc.returncode})\n{srv.log_tail()}")


def on_sigterm(signum, frame):
    raise KeyboardInterrupt  # so the finally blocks stop the servers


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when importable (the client's speed only), else asyncio's."""
    try:
        import uvloop  # type: ignore[import-not-found]
        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


# ---------------------------------------------------------------- wrk

UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def to_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"bad latency {text!r}")
    return float(m.group(1)) * UNIT_MS[m.group(2)]


def parse_wrk(out: str) -> dict:
    res: dict = {"rps": None, "p50_ms": None, "p99_ms": None, "requests": 0,
                 "non2xx": 0, "socket_errors": 0}
    if m := re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M):
        res["rps"] = float(m.group(1))
    if m := re.search(r"^\s*(\d+) requests in", out, re.M):
        res["requests"] = int(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        if m := re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M):
            res[key] = to_ms(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        res["non2xx"] = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        res["socket_errors"] = sum(int(g) for g in m.groups())
    return res


# ---------------------------------------------------------------- options and reporting

def parser(doc: Optional[str]) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def csv(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def check_names(p: argparse.ArgumentParser, what: str, names: list[str], known) -> None:
    for s in names:
        if s not in known:
            p.error(f"unknown {what} {s!r}")


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages (/proc/loadavg): how busy the machine was."""
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def machine() -> str:
    return f"{platform.node()}, {os.cpu_count()} cpus, Linux {platform.release()}"


def median(values: list) -> Optional[float]:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value: Optional[float], digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b else None


def without_port(command: str) -> str:
    return re.sub(r"(127\.0\.0\.1:|127\.0\.0\.1 |--port )\d+", r"\1<port>", command)


def print_commands(commands: list[str], problems: list[str],
                   title: str = "Commands used:") -> None:
    print(f"\n{title}")
    for c in commands:
        print(f"  {c}")
    if problems:
        print("\nProblems:")
        for pr in problems:
            print(f"  {pr}")


def write_json(path: Optional[Path], data: dict, **dumps_kw) -> None:
    if path:
        path.write_text(json.dumps(data, indent=2, **dumps_kw))
        print(f"\nraw results written to {path}")
