"""Reads callgrind output files: event totals, and self cost per function and object.

callgrind_annotate prints one file at a time and cannot subtract one run from
another; instructions.py needs both (a server's processes write one file each, and
per-request costs are the difference of two runs), so it reads the files itself.
The format is valgrind's "Callgrind Format Specification": position columns then
event columns per cost line, `(id) name` compression for object/file/function
names, and a `calls=` line whose following cost line is the callee's inclusive
cost (not the caller's self cost). Not a script itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_NAMED = re.compile(r"^\((\d+)\)(?: (.*))?$")


@dataclass
class Profile:
    events: list[str] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    # (object, function) -> {event: self cost}; empty unless read with functions=True
    functions: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    # (object, function) -> {event: cost of the calls it makes}; self + this = inclusive
    # (a function's calls to itself are left out, so recursion is not counted twice)
    callees: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    # ((object, caller), callee) -> {"calls": count, event: inclusive cost of those calls}:
    # one call site's share, where a callee's own totals mix all its callers
    arcs: dict[tuple[tuple[str, str], str], dict[str, int]] = field(default_factory=dict)

    def add(self, other: "Profile") -> None:
        for ev in other.events:
            if ev not in self.events:
                self.events.append(ev)
        for ev, v in other.totals.items():
            self.totals[ev] = self.totals.get(ev, 0) + v
        for mine_all, theirs in ((self.functions, other.functions),
                                 (self.callees, other.callees), (self.arcs, other.arcs)):
            for key, costs in theirs.items():
                mine = mine_all.setdefault(key, {})
                for ev, v in costs.items():
                    mine[ev] = mine.get(ev, 0) + v

    def inclusive(self, key: tuple[str, str], event: str = "Ir") -> int:
        return (self.functions.get(key, {}).get(event, 0)
                + self.callees.get(key, {}).get(event, 0))

    def by_object(self, event: str = "Ir") -> dict[str, int]:
        out: dict[str, int] = {}
        for (obj, _), costs in self.functions.items():
            out[obj] = out.get(obj, 0) + costs.get(event, 0)
        return out


def _totals_line(text: str, events: list[str]) -> dict[str, int]:
    return {ev: int(v) for ev, v in zip(events, text.split())}


def read(path: Path, functions: bool = False) -> Profile:
    """One callgrind.out file; with functions=True also the self cost of every function."""
    prof = Profile()
    names: dict[str, dict[str, str]] = {"ob": {}, "fl": {}, "fn": {}}
    kinds = {"ob": "ob", "cob": "ob", "fl": "fl", "fi": "fl", "fe": "fl", "cfi": "fl",
             "cfl": "fl", "fn": "fn", "cfn": "fn"}
    npos = 1
    obj = fn = "???"
    current: dict[str, int] | None = None
    calls: dict[str, int] | None = None  # where the cost line after `calls=` goes
    callee = "???"
    call_count = 0
    skip_next_cost = False
    summary: dict[str, int] = {}
    totals: dict[str, int] = {}

    def name(kind: str, value: str) -> str:
        m = _NAMED.match(value)
        if not m:
            return value
        table = names[kinds[kind]]
        if m.group(2) is not None:
            table[m.group(1)] = m.group(2)
        return table.get(m.group(1), value)

    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line[0] == "#":
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":  # a cost line
                if skip_next_cost:
                    skip_next_cost = False
                    if functions and calls is not None and callee != fn:
                        parts = line.split()
                        arc = prof.arcs.setdefault(((obj, fn), callee), {})
                        arc["calls"] = arc.get("calls", 0) + call_count
                        for ev, v in zip(prof.events, parts[npos:]):
                            calls[ev] = calls.get(ev, 0) + int(v)
                            arc[ev] = arc.get(ev, 0) + int(v)
                    continue
                if functions and current is not None:
                    parts = line.split()
                    for ev, v in zip(prof.events, parts[npos:]):
                        current[ev] = current.get(ev, 0) + int(v)
                continue
            key, _, value = line.partition("=")
            if _ == "=":
                if key == "calls":
                    skip_next_cost = True
                    call_count = int(value.split()[0])
                elif key == "ob":
                    obj = name(key, value)
                elif key == "fn":
                    fn = name(key, value)
                    if functions:
                        current = prof.functions.setdefault((obj, fn), {})
                        calls = prof.callees.setdefault((obj, fn), {})
                elif key == "cfn":
                    callee = name(key, value)
                elif key in kinds:
                    name(key, value)  # keeps the compression table complete
                continue
            key, _, value = line.partition(":")
            value = value.strip()
            if key == "events":
                prof.events = value.split()
            elif key == "positions":
                npos = len(value.split())
            elif key == "summary":
                summary = _totals_line(value, prof.events)
            elif key == "totals":
                for ev, v in _totals_line(value, prof.events).items():
                    totals[ev] = totals.get(ev, 0) + v
    prof.totals = summary or totals
    return prof


def read_all(paths: list[Path], functions: bool = False) -> Profile:
    """The sum over several files (one per process of a server)."""
    total = Profile()
    for p in paths:
        total.add(read(p, functions))
    return total


def short_object(path: str) -> str:
    """`/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0` -> `libpython3.11.so.1.0`."""
    return path.rsplit("/", 1)[-1] if path else "???"
