"""Nothing outlives a killed operator: its decode sandbox (fork server, workers, resource tracker) ends with
it, however it ends (issue 30). SIGKILL runs no cleanup, exactly like a crash."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from harness import Cluster, wait_until
from test_operator import TINY, wait_run


def children(pid: int) -> dict[int, int]:
    """Every live process's parent, from /proc (zombies count as gone)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if state != "Z":
            parents[int(entry.name)] = int(ppid)
    return parents


def descendants(pid: int) -> set[int]:
    parents, found, frontier = children(pid), set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    return pids & set(children(0))


def test_a_sigkilled_operator_leaves_no_sandbox_process_behind(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    operator = start_operator()
    cluster.helm("install", "web", TINY, "-n", namespace)
    wait_run(cluster, namespace, "web-1", timeout=90)  # decoded and planned in the sandbox
    assert operator.proc is not None
    pid = operator.proc.pid

    def started() -> set[int] | None:
        found = descendants(pid)
        return found if len(found) >= 3 else None

    sandbox = wait_until(started, timeout=30, what="the fork server, its workers and the resource tracker")
    os.kill(pid, signal.SIGKILL)
    operator.proc.wait(timeout=10)
    left = wait_until(lambda: not alive(sandbox) or None, timeout=20, what=f"{sorted(alive(sandbox))} to end")
    assert left
