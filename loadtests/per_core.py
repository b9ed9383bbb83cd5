"""compare.py's tables for runs with several worker processes (`narwhal-w2`, ...): CPU
per request against the number of workers, and the per-core projection. Not a script.

CPU per request should not depend on how many workers share the load; when it does,
the context switches per request beside it usually say why (threads that sleep and are
woken between requests). req/s per core = 1 / CPU per request is what one saturated
worker serves on a core of its own; N cores serve N times that, with one worker per
core and the load generator elsewhere.
"""

from __future__ import annotations

from typing import Optional

from harness import fmt
from servers import parse_variant

PROJECTED_CORES = (8, 32)


def family(server: str) -> tuple[str, Optional[int], Optional[int]]:
    """Servers that differ only in their worker count: (base, interpreters, I/O threads)."""
    v = parse_variant(server)
    return v.base, v.interpreters, v.io_threads


def one_worker(servers: list[str]) -> Optional[str]:
    """The family's reference: `-w1` where run (a worker under a master or supervisor),
    else the plain name (uvicorn and granian run one worker that way)."""
    named = {parse_variant(s).workers: s for s in servers}
    return named.get(1) or named.get(None)


def families(rows: list[dict]) -> dict[tuple, list[str]]:
    """Families with more than one worker count in this run, servers in row order,
    fewest processes first (the plain name before -w1)."""
    found: dict[tuple, list[str]] = {}
    for r in rows:
        if "skipped" in r:
            continue
        members = found.setdefault(family(r["server"]), [])
        if r["server"] not in members:
            members.append(r["server"])
    order = lambda s: (parse_variant(s).workers or 0)  # noqa: E731
    return {k: sorted(v, key=order) for k, v in found.items()
            if len({parse_variant(s).processes for s in v}) > 1}


def workers_label(server: str) -> str:
    v = parse_variant(server)
    if v.workers is None:
        return "one process" if v.base == "narwhal" else "1 worker"
    return f"{v.workers} worker" + ("s" if v.workers > 1 else "")


def workers_table(rows: list[dict]) -> list[str]:
    """One row per server family: CPU per request (switches per request) with each
    worker count, and the most workers' CPU against one worker's."""
    fams = families(rows)
    if not fams:
        return []
    members_all = [s for members in fams.values() for s in members]
    columns = sorted(dict.fromkeys(workers_label(s) for s in members_all),
                     key=lambda c: (c != "one process", int(c.split()[0]) if c[0].isdigit() else 0))
    out = [f"| scenario | conns | server | {' | '.join(columns)} | most workers vs 1 |",
           "|---|---:|---|" + "---:|" * len(columns) + "---:|"]
    keys = list(dict.fromkeys((r["scenario"], r["connections"]) for r in rows))
    for scenario, conns in keys:
        at = {r["server"]: r for r in rows if (r["scenario"], r["connections"]) == (scenario, conns)
              and "skipped" not in r}
        for members in fams.values():
            cells = {}
            for server in members:
                if (r := at.get(server)) is not None:
                    cells[workers_label(server)] = (f"{fmt(r.get('cpu_us_per_req'))} "
                                                    f"({fmt(r.get('switches_per_req'), 2)})")
            if not cells:
                continue
            ref, most = at.get(one_worker(members) or ""), at.get(members[-1])
            vs = (most["cpu_us_per_req"] / ref["cpu_us_per_req"]
                  if ref and most and ref.get("cpu_us_per_req") and most.get("cpu_us_per_req")
                  else None)
            first = parse_variant(members[0])
            name = (first.base + (f" -i{first.interpreters}" if first.interpreters else "")
                    + (f" -t{first.io_threads}" if first.io_threads is not None else ""))
            out.append(f"| {scenario} | {conns} | {name} | "
                       + " | ".join(cells.get(c, "") for c in columns) + f" | {fmt(vs, 2)} |")
    return out


def projection_table(rows: list[dict]) -> list[str]:
    """req/s per core of one worker (at the most connections run: the most saturated),
    times PROJECTED_CORES, beside the per-core figure of the most workers run here."""
    fams = families(rows)
    if not fams:
        return []
    cores = " | ".join(f"{n} cores" for n in PROJECTED_CORES)
    out = [f"| scenario | conns | server | CPU µs/req, 1 worker | req/s per core | {cores} "
           f"| req/s per core, most workers here |",
           "|---|---:|---|---:|---:|" + "---:|" * len(PROJECTED_CORES) + "---:|"]
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        conns = max(r["connections"] for r in rows if r["scenario"] == scenario)
        at = {r["server"]: r for r in rows if (r["scenario"], r["connections"]) == (scenario, conns)
              and "skipped" not in r}
        for members in fams.values():
            ref, most = at.get(one_worker(members) or ""), at.get(members[-1])
            if not ref or not ref.get("cpu_us_per_req"):
                continue
            per_core = 1e6 / ref["cpu_us_per_req"]
            projected = " | ".join(f"{fmt(round(per_core * n, -3), 0)}" for n in PROJECTED_CORES)
            most_per_core = (1e6 / most["cpu_us_per_req"]
                             if most and most.get("cpu_us_per_req") else None)
            out.append(f"| {scenario} | {conns} | {ref['server']} | {fmt(ref['cpu_us_per_req'])} "
                       f"| {fmt(per_core, 0)} | {projected} "
                       f"| {fmt(most_per_core, 0)} ({members[-1]}) |")
    return out


def markdown_sections(rows: list[dict]) -> list[str]:
    """Both tables with a line of explanation each; nothing when no run has workers."""
    workers, projection = workers_table(rows), projection_table(rows)
    if not workers:
        return []
    return ["", "CPU µs per request (context switches per request) against worker processes, "
            "medians from the table above; the last column divides the most workers' CPU per "
            "request by one worker's (narwhal: `-w1`, a master and one worker, where run; "
            "else the single process):", "",
            *workers, "",
            f"Per-core projection: req/s per core = 1 / CPU per request of one worker at the "
            f"most connections run; N cores = N x that (one worker per core, the load "
            f"generator elsewhere). The last column is the per-core figure measured here "
            f"with the most workers, hand-off wake-ups included:", "",
            *projection]
