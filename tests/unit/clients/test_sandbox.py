"""The sandbox process: time and memory limits, a killed worker replaced, decode + plan end to end."""

from __future__ import annotations

import asyncio
import pickle
import time
from collections.abc import AsyncIterator

import pytest
from helm_encoding import helm_release_doc, helm_secret

from helm_e2e.clients import sandbox as sandboxing
from helm_e2e.core.model.suite import Suite
from helm_e2e.core.plan import decode_and_plan as planjob
from helm_e2e.errors import ReleaseIdentityError, SandboxMemory, SandboxTimeout

OPTIONS = planjob.PlanOptions(run_chart_hooks=False)
LOOP_BOMB = "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}"
# loops over values, not range: only the time limit stops it (no output, 1e10 iterations)
CPU_BOMB = "{% for a in values.n %}{% for b in values.n %}{% endfor %}{% endfor %}"


@pytest.fixture
async def box() -> AsyncIterator[sandboxing.Sandbox]:
    sandbox = sandboxing.Sandbox(memory_mib=128, workers=2)
    yield sandbox
    sandbox.close()


def suite(template: str, name: str = "api") -> Suite:
    test = {"name": "t", "template": {"containers": [{"name": "c", "image": template}]}}
    return Suite(name=name, namespace="shop", spec={"tests": [test]})


def secret(**values: object) -> dict[str, object]:
    return helm_secret(helm_release_doc(config=values))


async def test_decode_and_plan_returns_the_plan_and_the_release_without_values(
    box: sandboxing.Sandbox,
) -> None:
    result = await sandboxing.decode_and_plan(
        box, secret(), suites=[suite("img:{{ image_tag }}")], options=OPTIONS, time_limit=30
    )
    assert result.release.name == "web"
    assert result.release.values == {}
    assert [t.pod_spec["containers"][0]["image"] for t in result.plan.tests] == ["img:2.0.0"]


async def test_decode_errors_come_back_as_they_are_without_the_remote_traceback(
    box: sandboxing.Sandbox,
) -> None:
    bad = secret()
    bad["metadata"] = {**bad["metadata"], "labels": {"name": "other", "version": "1"}}  # type: ignore[dict-item]
    with pytest.raises(ReleaseIdentityError) as info:
        await sandboxing.decode_and_plan(box, bad, suites=[], options=OPTIONS, time_limit=30)
    assert info.value.__cause__ is None


async def test_a_loop_bomb_makes_its_suite_invalid_at_once(box: sandboxing.Sandbox) -> None:
    started = time.perf_counter()
    result = await sandboxing.decode_and_plan(
        box, secret(), suites=[suite(LOOP_BOMB, "bomb"), suite("ok")], options=OPTIONS, time_limit=30
    )
    assert [p.suite for p in result.plan.problems] == ["bomb"]
    assert result.plan.used_suites == ["api"]
    assert time.perf_counter() - started < 5


async def test_a_cpu_bomb_is_killed_at_the_time_limit_while_a_normal_plan_completes(
    box: sandboxing.Sandbox,
) -> None:
    await box.run_bounded(sum, [1], time_limit=30)  # warm: the fork server is up
    started = time.perf_counter()
    bomb = sandboxing.decode_and_plan(
        box,
        secret(n=list(range(100_000))),
        suites=[suite(CPU_BOMB)],
        options=OPTIONS,
        time_limit=2,
        suite_time_limit=60,  # only the process limit applies
    )
    normal = sandboxing.decode_and_plan(box, secret(), suites=[suite("ok")], options=OPTIONS, time_limit=30)
    bombed, planned = await asyncio.gather(bomb, normal, return_exceptions=True)
    assert isinstance(bombed, SandboxTimeout)
    assert isinstance(planned, planjob.ReleasePlan)
    assert planned.plan.used_suites == ["api"]
    assert time.perf_counter() - started < 5
    assert await box.run_bounded(sum, [2, 3], time_limit=30) == 5  # the killed worker was replaced


async def test_a_slow_suite_becomes_a_problem_of_the_plan_and_the_others_are_planned(
    box: sandboxing.Sandbox,
) -> None:
    started = time.perf_counter()
    result = await sandboxing.decode_and_plan(
        box,
        secret(n=list(range(100_000))),
        suites=[suite(CPU_BOMB, "a-bomb"), suite("ok", "b-fine")],
        options=OPTIONS,
        time_limit=20,
        suite_time_limit=1,
    )
    assert [(p.suite, p.message) for p in result.plan.problems] == [
        ("a-bomb", "rendering took longer than 1s")
    ]
    assert result.plan.used_suites == ["b-fine"]
    assert time.perf_counter() - started < 4


async def test_running_out_of_memory_is_a_sandbox_error_not_the_operators(box: sandboxing.Sandbox) -> None:
    with pytest.raises(SandboxMemory):
        await box.run_bounded(bytearray, 2**30, time_limit=30)
    assert await box.run_bounded(len, "abc", time_limit=30) == 3


def test_release_and_plan_cross_the_process_boundary_intact() -> None:
    release = planjob.decode_release(secret())
    plan = planjob.plan_release(release, suites=[suite("x")], options=OPTIONS)
    result = planjob.ReleasePlan(release=release, plan=plan)
    assert pickle.loads(pickle.dumps(result)) == result  # noqa: S301 - our own bytes


async def test_warming_starts_every_worker_so_the_first_decode_finds_one_idle(
    box: sandboxing.Sandbox,
) -> None:
    await box.warm()
    assert len(box._idle) == 2
    await sandboxing.decode_release(box, secret(), time_limit=30)
    assert len(box._idle) == 2  # the decode used a warm worker and gave it back
