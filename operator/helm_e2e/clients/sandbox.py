"""A bounded worker process for work on untrusted input: a time limit and an address-space limit.

Decoding a release Secret and rendering E2ESuite templates are pure but can be made to burn CPU or
memory by whoever writes Secrets or suites in a namespace. They run here, off the event loop, in
forkserver worker processes (one per concurrent call, at most `workers`) whose address space is capped
at their size after start-up plus `memory_mib`. A call that runs past its timeout has its worker killed
and replaced (SandboxTimeout); one that runs out of memory raises SandboxMemory. The operator process
never holds the bomb, only the bounded result.

Errors from the work come back without their remote traceback or cause chain (those may quote input).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import multiprocessing
import resource
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

import structlog

from helm_e2e.clients.orphans import die_with_parent
from helm_e2e.core.model.release import Release
from helm_e2e.core.model.suite import Suite
from helm_e2e.core.plan import decode_and_plan as planjob
from helm_e2e.core.plan.build import Plan
from helm_e2e.errors import HelmE2EError, SandboxError, SandboxMemory, SandboxTimeout, SuiteInvalid

log = structlog.get_logger(__name__)
T = TypeVar("T")
MiB = 2**20
# imported once by the fork server: it dies with the operator, and workers start warm
# templating (jinja2) is imported lazily by the planner: preloaded here, where suites are rendered
PRELOAD = [
    "helm_e2e.clients.sandbox_preload",
    "helm_e2e.core.plan.decode_and_plan",
    "helm_e2e.core.plan.templating",
]
WORKERS = 2  # the chart's memory limit is sized for this many (tests/unit/chart/test_chart_static.py)


def _address_space_now() -> int:
    """This process's virtual size (bytes); 0 where /proc is not available."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _limit_memory(headroom_bytes: int) -> None:
    """Worker initializer: die with the fork server, cap the address space at today's size plus the
    headroom."""
    die_with_parent()
    limit = _address_space_now() + headroom_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class _SuiteOverTime(BaseException):
    """Raised by the alarm inside a suite's rendering; a BaseException so template code cannot catch it."""


@contextlib.contextmanager
def _suite_alarm(seconds: float, suite: str) -> Iterator[None]:
    """In a worker: a suite still planning after `seconds` becomes SuiteInvalid, the others go on."""
    armed = True

    def over_time(signum: int, frame: object) -> None:
        if armed:  # a signal still pending after the suite finished is ignored
            raise _SuiteOverTime

    previous = signal.signal(signal.SIGALRM, over_time)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        try:
            yield
        finally:
            armed = False
    except _SuiteOverTime:
        raise SuiteInvalid(suite, f"rendering took longer than {seconds:g}s") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _decode_and_plan_in_worker(
    secret: Mapping[str, Any], *, suites: Sequence[Suite], options: planjob.PlanOptions, suite_seconds: float
) -> planjob.ReleasePlan:
    guard = functools.partial(_suite_alarm, suite_seconds)
    return planjob.decode_and_plan(secret, suites=suites, options=options, suite_guard=guard)


def _plan_in_worker(
    release: Release, *, suites: Sequence[Suite], options: planjob.PlanOptions, suite_seconds: float
) -> Plan:
    guard = functools.partial(_suite_alarm, suite_seconds)
    return planjob.plan_release(release, suites=suites, options=options, suite_guard=guard)


def _ready() -> bool:
    """A no-op for `Sandbox.warm`: its worker is up once this returns."""
    return True


class Sandbox:
    """Runs picklable functions in limited worker processes; create once, `close()` at shutdown."""

    def __init__(self, *, memory_mib: int = 256, workers: int = WORKERS) -> None:
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(PRELOAD)
        self._headroom = memory_mib * MiB
        self._workers = workers
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[concurrent.futures.ProcessPoolExecutor] = []

    def _new_worker(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=1,
            mp_context=self._context,
            initializer=_limit_memory,
            initargs=(self._headroom,),
        )

    @staticmethod
    def _kill(worker: concurrent.futures.ProcessPoolExecutor) -> None:
        for process in list((worker._processes or {}).values()):
            process.kill()
        worker.shutdown(wait=False, cancel_futures=True)

    async def run_bounded(self, fn: Callable[..., T], *args: Any, time_limit: float, **kwargs: Any) -> T:
        """fn(*args, **kwargs) in a worker; SandboxTimeout / SandboxMemory / SandboxError past a limit.

        `time_limit` (seconds) is not a cancel scope: when it passes, the worker process is killed, which
        no asyncio timeout around the call could do. helm-e2e's own errors (ReleaseDecodeError, ...)
        are raised as they are, without the worker's traceback."""
        self._slots = self._slots or asyncio.Semaphore(self._workers)
        async with self._slots:
            worker = self._idle.pop() if self._idle else self._new_worker()
            future = worker.submit(functools.partial(fn, *args, **kwargs))
            try:
                result = await asyncio.wait_for(asyncio.wrap_future(future), time_limit)
            except TimeoutError:
                self._kill(worker)
                raise SandboxTimeout(
                    f"sandboxed work ran longer than {time_limit:g}s; worker killed"
                ) from None
            except (MemoryError, BrokenProcessPool) as e:
                self._kill(worker)
                raise SandboxMemory(f"sandboxed work exceeded its memory ({type(e).__name__})") from None
            except HelmE2EError as e:
                self._idle.append(worker)
                raise e.with_traceback(None) from None
            except Exception as e:
                self._idle.append(worker)
                raise SandboxError(f"sandboxed work failed: {type(e).__name__}") from None
            self._idle.append(worker)
            return result

    async def warm(self) -> None:
        """Start every worker now (the fork server, its preload, each worker's initializer): on a cold
        sandbox the first decode waited for all of that, 1.3-3.6 s, the whole of trigger latency's p99."""
        self._slots = self._slots or asyncio.Semaphore(self._workers)
        started = time.monotonic()

        async def start_one(slots: asyncio.Semaphore) -> None:
            async with slots:
                worker = self._idle.pop() if self._idle else self._new_worker()
                try:
                    await asyncio.wrap_future(worker.submit(_ready))
                except (BrokenProcessPool, OSError):  # the first real call starts a fresh one
                    self._kill(worker)
                    return
                self._idle.append(worker)

        await asyncio.gather(*(start_one(self._slots) for _ in range(self._workers)))
        log.info("sandbox.warm", workers=len(self._idle), ms=round((time.monotonic() - started) * 1000))

    def close(self) -> None:
        while self._idle:
            self._idle.pop().shutdown(wait=True, cancel_futures=True)


def _secret_fields(secret: Mapping[str, Any]) -> dict[str, Any]:
    """Only what decoding reads, as plain dicts (a kopf body is not picklable as it is)."""
    meta = secret.get("metadata") or {}
    data = secret.get("data") or {}
    return {
        "type": secret.get("type"),
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "labels": dict(meta.get("labels") or {}),
        },
        "data": {"release": data.get("release")},
    }


async def decode_and_plan(
    sandbox: Sandbox,
    secret: Mapping[str, Any],
    *,
    suites: Sequence[Suite],
    options: planjob.PlanOptions,
    time_limit: float,
    suite_time_limit: float | None = None,
) -> planjob.ReleasePlan:
    """core.planjob.decode_and_plan in the sandbox: the Release (without values) and its Plan.

    A suite still rendering after `suite_time_limit` (default: a quarter of `time_limit`) becomes a
    problem of the plan; past `time_limit` the whole call ends in SandboxTimeout."""
    return await sandbox.run_bounded(
        _decode_and_plan_in_worker,
        _secret_fields(secret),
        suites=list(suites),
        options=options,
        suite_seconds=suite_time_limit or time_limit / 4,
        time_limit=time_limit,
    )


async def plan_release(
    sandbox: Sandbox,
    release: Release,
    *,
    suites: Sequence[Suite],
    options: planjob.PlanOptions,
    time_limit: float,
) -> Plan:
    """core.planjob.plan_release in the sandbox: a release that is no Helm Secret (an Argo CD sync)."""
    return await sandbox.run_bounded(
        _plan_in_worker,
        release,
        suites=list(suites),
        options=options,
        suite_seconds=time_limit / 4,
        time_limit=time_limit,
    )


async def decode_release(sandbox: Sandbox, secret: Mapping[str, Any], *, time_limit: float) -> Release:
    """core.planjob.decode_release in the sandbox (to check a release before listing its suites)."""
    return await sandbox.run_bounded(planjob.decode_release, _secret_fields(secret), time_limit=time_limit)
