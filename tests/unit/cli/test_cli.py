"""`helm-e2e wait | junit | logs` over an in-memory cluster: what is printed, and the exit codes a pipeline
gates on (0 Succeeded, 1 Failed, 2 anything else)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from kubernetes.config import kube_config
from runs import web_r3_body as run_body

from helm_e2e.cli import main as cli
from helm_e2e.core.model.run_codec import run_from_body
from helm_e2e.core.model.run_status import PytestSummary, RunPhase, TestPhase, TestResult

Body = dict[str, Any]
UseKube = Callable[["FakeKube"], None]
FAILING_LOG = "tests/test_api.py ...F.\nFAILED tests/test_api.py::test_checkout - assert 503 == 200\n"


class FakeKube:
    """The part of `helm_e2e.clients.kube.Kube` the CLI uses, over an in-memory cluster.

    `runs[(namespace, name)]` is what successive `get_run` calls return (the last one repeats), so a
    test can script a run's life; `releases[(namespace, release)]` are the stored revisions.
    """

    def __init__(
        self,
        *,
        runs: dict[tuple[str, str], Sequence[Body | None]] | None = None,
        releases: dict[tuple[str, str], Sequence[int]] | None = None,
        error: Exception | None = None,
    ) -> None:
        self.runs = {key: list(bodies) for key, bodies in (runs or {}).items()}
        self.releases = releases or {}
        self.error = error
        self.polls: list[tuple[str, str]] = []
        self.listed: list[Body] = []  # what list_runs returns (attempts of a revision, re-runs)
        self.annotated: list[tuple[str, str, dict[str, str]]] = []

    async def list_runs(self, namespace: str, release: str) -> list[Body]:
        if self.error:
            raise self.error
        return [b for b in self.listed if b["metadata"]["namespace"] == namespace]

    @property
    def custom(self) -> Any:  # the CustomObjectsApi the CLI patches a run's annotations with
        kube = self

        class Custom:
            def patch_namespaced_custom_object(self, *args: Any) -> None:
                namespace, name, body = args[2], args[4], args[5]
                kube.annotate(namespace, name, body["metadata"]["annotations"])

        return Custom()

    def annotate(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        self.annotated.append((namespace, name, dict(annotations)))

    async def get_run(self, namespace: str, name: str) -> Body | None:
        self.polls.append((namespace, name))
        if self.error:
            raise self.error
        bodies = self.runs.get((namespace, name)) or [None]
        return bodies.pop(0) if len(bodies) > 1 else bodies[0]

    async def release_secret_labels(self, namespace: str, release: str) -> list[dict[str, str]]:
        if self.error:
            raise self.error
        revisions = self.releases.get((namespace, release), [])
        return [
            {"owner": "helm", "name": release, "status": "superseded", "version": str(r)} for r in revisions
        ]


def passed(name: str, *, log: str = "5 passed in 1.2s\n") -> TestResult:
    return TestResult(name=name, phase=TestPhase.SUCCEEDED, exit_code=0, reason="Completed", log_tail=log)


def failed(name: str) -> TestResult:
    summary = PytestSummary(passed=4, failed=1, first_failures=["tests/test_api.py::test_checkout"])
    return TestResult(
        name=name, phase=TestPhase.FAILED, exit_code=1, reason="Error", pytest=summary, log_tail=FAILING_LOG
    )


def running(name: str) -> TestResult:
    return TestResult(name=name, phase=TestPhase.RUNNING)


async def wait(kube: FakeKube, *, revision: int | None = None, timeout: float = 5.0) -> int:
    return await cli.wait_for_run(kube, "shop", "web", revision=revision, timeout=timeout, interval=0)  # type: ignore[arg-type]


# --- wait ------------------------------------------------------------------------------------------


async def test_wait_exits_0_when_the_latest_revisions_run_succeeds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    kube = FakeKube(
        releases={("shop", "web"): [1, 3, 2]},
        runs={("shop", "web-3"): [run_body(RunPhase.SUCCEEDED, passed("smoke"), passed("api"))]},
    )
    assert await wait(kube) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "waiting for E2ERun shop/web-3 (release web revision 3)",
        "  smoke: Succeeded (exit code 0, Completed)",
        "  api: Succeeded (exit code 0, Completed)",
        "web-3: Succeeded — 2/2 passed, 0 failed, 0 errored (image tag 2.0.1)",
    ]


async def test_wait_exits_1_and_names_the_failing_pytest_tests_when_the_run_fails(
    capsys: pytest.CaptureFixture[str],
) -> None:
    kube = FakeKube(runs={("shop", "web-3"): [run_body(RunPhase.FAILED, passed("smoke"), failed("api"))]})
    assert await wait(kube, revision=3) == cli.EXIT_FAILED
    out = capsys.readouterr().out
    assert "  api: Failed (exit code 1, Error); pytest: 4 passed, 1 failed, 0 errors\n" in out
    assert "\n    FAILED tests/test_api.py::test_checkout\n" in out
    assert out.endswith("web-3: Failed — 1/2 passed, 1 failed, 0 errored (image tag 2.0.1)\n")


@pytest.mark.parametrize("phase", [RunPhase.ERROR, RunPhase.CANCELLED, RunPhase.SUPERSEDED])
async def test_wait_exits_2_when_the_run_ends_neither_succeeded_nor_failed(
    phase: RunPhase, capsys: pytest.CaptureFixture[str]
) -> None:
    kube = FakeKube(runs={("shop", "web-3"): [run_body(phase, passed("smoke"))]})
    assert await wait(kube, revision=3) == cli.EXIT_ERROR
    assert f"web-3: {phase.value} — " in capsys.readouterr().out


async def test_wait_follows_the_run_and_prints_each_change_of_a_test_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    life = [
        None,  # the operator has not created the run yet
        run_body(RunPhase.PENDING),
        run_body(RunPhase.RUNNING, running("smoke"), running("api")),
        run_body(RunPhase.RUNNING, running("smoke"), running("api")),
        run_body(RunPhase.RUNNING, passed("smoke"), running("api")),
        run_body(RunPhase.SUCCEEDED, passed("smoke"), passed("api")),
    ]
    kube = FakeKube(runs={("shop", "web-3"): life})
    assert await wait(kube, revision=3) == cli.EXIT_OK
    assert len(kube.polls) == len(life)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == [
        "  smoke: Running",
        "  api: Running",
        "  smoke: Succeeded (exit code 0, Completed)",
        "  api: Succeeded (exit code 0, Completed)",
        "web-3: Succeeded — 2/2 passed, 0 failed, 0 errored (image tag 2.0.1)",
    ]


async def test_wait_with_a_revision_does_not_look_up_the_release(capsys: pytest.CaptureFixture[str]) -> None:
    kube = FakeKube(
        releases={("shop", "web"): [7]},
        runs={("shop", "web-3"): [run_body(RunPhase.SUCCEEDED, passed("smoke"))]},
    )
    assert await wait(kube, revision=3) == cli.EXIT_OK
    assert kube.polls == [("shop", "web-3")]


async def test_wait_exits_2_at_once_when_the_release_does_not_exist(
    capsys: pytest.CaptureFixture[str],
) -> None:
    kube = FakeKube()
    assert await wait(kube) == cli.EXIT_ERROR
    assert kube.polls == []
    assert capsys.readouterr().err == "helm-e2e: error: no Helm release web in namespace shop\n"


async def test_wait_exits_2_on_timeout_and_says_no_run_was_created(
    capsys: pytest.CaptureFixture[str],
) -> None:
    kube = FakeKube(releases={("shop", "web"): [3]})
    assert await wait(kube, timeout=0.05) == cli.EXIT_ERROR
    assert kube.polls, "the run is looked for until the deadline"
    err = capsys.readouterr().err
    assert err.startswith("helm-e2e: error: timed out after 0.05s waiting for E2ERun shop/web-3 (no run yet:")


async def test_wait_on_timeout_does_not_claim_there_is_no_run_when_one_exists_without_tests(
    capsys: pytest.CaptureFixture[str],
) -> None:
    kube = FakeKube(runs={("shop", "web-3"): [run_body(RunPhase.PENDING)]})
    assert await wait(kube, revision=3, timeout=0.05) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err == "helm-e2e: error: timed out after 0.05s waiting for E2ERun shop/web-3\n"


async def test_wait_on_timeout_with_a_running_test_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    kube = FakeKube(runs={("shop", "web-3"): [run_body(RunPhase.RUNNING, running("load"))]})
    assert await wait(kube, revision=3, timeout=0.05) == cli.EXIT_ERROR
    captured = capsys.readouterr()
    assert captured.out.count("  load: Running\n") == 1
    assert "no run yet" not in captured.err


# --- logs ------------------------------------------------------------------------------------------


def test_logs_print_every_tests_tail_under_a_header(capsys: pytest.CaptureFixture[str]) -> None:
    run = run_from_body(run_body(RunPhase.FAILED, passed("smoke", log=""), failed("api")))
    assert cli.print_logs(run, None) == cli.EXIT_OK
    assert capsys.readouterr().out == (
        f"==> smoke (Succeeded) <==\n(no log recorded)\n==> api (Failed) <==\n{FAILING_LOG}\n"
    )


def test_logs_of_one_test_print_only_its_tail(capsys: pytest.CaptureFixture[str]) -> None:
    run = run_from_body(run_body(RunPhase.FAILED, passed("smoke"), failed("api")))
    assert cli.print_logs(run, "api") == cli.EXIT_OK
    assert capsys.readouterr().out == f"{FAILING_LOG}\n"


def test_logs_of_an_unknown_test_exit_2_and_list_the_tests(capsys: pytest.CaptureFixture[str]) -> None:
    run = run_from_body(run_body(RunPhase.FAILED, passed("smoke"), failed("api")))
    assert cli.print_logs(run, "load") == cli.EXIT_ERROR
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "helm-e2e: error: no test load in web-3 (tests: smoke, api)\n"


# --- main: the commands end to end over the fake --------------------------------------------------


@pytest.fixture
def use_kube(monkeypatch: pytest.MonkeyPatch) -> UseKube:
    """Make `main` talk to the given FakeKube instead of building a client from the kubeconfig."""

    def use(kube: FakeKube) -> None:
        monkeypatch.setattr(cli, "load_api_client", lambda: "api-client")
        monkeypatch.setattr(cli, "Kube", lambda api: kube if api == "api-client" else None)

    return use


def test_junit_prints_the_run_as_junit_xml(use_kube: UseKube, capsys: pytest.CaptureFixture[str]) -> None:
    use_kube(FakeKube(runs={("shop", "web-3"): [run_body(RunPhase.FAILED, passed("smoke"), failed("api"))]}))
    assert cli.main(["junit", "web-3", "-n", "shop"]) == cli.EXIT_OK
    suite = ET.fromstring(capsys.readouterr().out.encode())
    assert (suite.tag, suite.get("name"), suite.get("tests"), suite.get("failures")) == (
        "testsuite",
        "web-3",
        "2",
        "1",
    )
    assert [case.get("name") for case in suite.iter("testcase")] == ["smoke", "api"]


def test_logs_command_prints_one_tests_tail(use_kube: UseKube, capsys: pytest.CaptureFixture[str]) -> None:
    use_kube(FakeKube(runs={("shop", "web-3"): [run_body(RunPhase.FAILED, passed("smoke"), failed("api"))]}))
    assert cli.main(["logs", "web-3", "api", "--namespace", "shop"]) == cli.EXIT_OK
    assert capsys.readouterr().out == f"{FAILING_LOG}\n"


@pytest.mark.parametrize("command", ["junit", "logs"])
def test_a_missing_run_exits_2_with_its_name(
    command: str, use_kube: UseKube, capsys: pytest.CaptureFixture[str]
) -> None:
    use_kube(FakeKube())
    assert cli.main([command, "web-9", "-n", "shop"]) == cli.EXIT_ERROR
    assert capsys.readouterr().err == "helm-e2e: error: E2ERun shop/web-9 not found\n"


@pytest.mark.parametrize("command", [["junit", "web-3"], ["logs", "web-3"], ["wait", "web"]])
def test_an_api_error_exits_2_with_one_line(
    command: list[str], use_kube: UseKube, capsys: pytest.CaptureFixture[str]
) -> None:
    use_kube(FakeKube(error=ConnectionRefusedError("connection refused")))
    assert cli.main([*command, "-n", "shop"]) == cli.EXIT_ERROR
    assert capsys.readouterr().err == "helm-e2e: error: connection refused\n"


def test_no_kubeconfig_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_config() -> None:
        raise RuntimeError("Invalid kube-config file. No configuration found.")

    monkeypatch.setattr(cli, "load_api_client", no_config)
    assert cli.main(["junit", "web-3", "-n", "shop"]) == cli.EXIT_ERROR
    assert capsys.readouterr().err == "helm-e2e: error: Invalid kube-config file. No configuration found.\n"


@pytest.mark.parametrize(
    ("phase", "code"), [(RunPhase.SUCCEEDED, 0), (RunPhase.FAILED, 1), (RunPhase.ERROR, 2)]
)
def test_the_wait_command_exits_with_the_runs_code(
    phase: RunPhase, code: int, use_kube: UseKube, capsys: pytest.CaptureFixture[str]
) -> None:
    use_kube(FakeKube(runs={("shop", "web-3"): [run_body(phase, passed("smoke"))]}))
    assert cli.main(["wait", "web", "--revision", "3", "-n", "shop", "--interval", "0"]) == code


def test_the_namespace_defaults_to_the_kubeconfig_contexts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use_kube: UseKube, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: dev, context: {cluster: c, user: u, namespace: team-a}}]\n"
    )
    # $KUBECONFIG is read when the kubernetes package is imported: point at the file as if it had been set
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    use_kube(
        FakeKube(
            runs={("team-a", "web-3"): [run_body(RunPhase.SUCCEEDED, passed("smoke"), namespace="team-a")]}
        )
    )
    assert cli.main(["junit", "web-3"]) == cli.EXIT_OK
    assert 'name="web-3"' in capsys.readouterr().out


def test_without_a_kubeconfig_the_namespace_is_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use_kube: UseKube, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "absent"))
    use_kube(FakeKube())
    assert cli.main(["logs", "web-3"]) == cli.EXIT_ERROR
    assert capsys.readouterr().err == "helm-e2e: error: E2ERun default/web-3 not found\n"


def test_run_starts_the_operator_with_the_liveness_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    from helm_e2e.runtime import main as operator_main

    started: list[str] = []
    monkeypatch.setattr(operator_main, "run_operator", lambda *, liveness: started.append(liveness))
    assert cli.main(["run", "--liveness", "http://0.0.0.0:8080/healthz"]) == cli.EXIT_OK
    assert started == ["http://0.0.0.0:8080/healthz"]


# --- re-runs and attempts ------------------------------------------------------------------------------


def attempt_body(phase: RunPhase, attempt: int, *tests: TestResult, key: str = "t") -> Body:
    body = run_body(phase, *tests, name=f"web-3-r{attempt}")
    body["spec"]["attempt"] = attempt
    body["spec"]["request"] = {"trigger": "rerun", "token": key}
    return body


async def test_wait_follows_the_newest_attempt_of_the_revision_and_shows_flaky_tests(
    capsys: pytest.CaptureFixture[str],
) -> None:
    kube = FakeKube(releases={("shop", "web"): [3]})
    flaky = passed("smoke").model_copy(update={"flaky": True, "attempt": 2})
    kube.listed = [run_body(RunPhase.FAILED, failed("smoke")), attempt_body(RunPhase.SUCCEEDED, 2, flaky)]
    assert await wait(kube) == cli.EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "following E2ERun shop/web-3-r2 (attempt 2)"
    assert out[2] == "  smoke: Succeeded (exit code 0, Completed) [flaky: passed on attempt 2]"


def test_rerun_annotates_the_latest_run_with_a_fresh_token(
    use_kube: UseKube, capsys: pytest.CaptureFixture[str]
) -> None:
    kube = FakeKube()
    kube.listed = [
        run_body(RunPhase.FAILED, failed("smoke")),
        attempt_body(RunPhase.FAILED, 2, failed("smoke")),
    ]
    use_kube(kube)
    assert cli.main(["rerun", "web", "-n", "shop"]) == cli.EXIT_OK
    assert cli.main(["rerun", "web", "-n", "shop"]) == cli.EXIT_OK
    (ns1, name1, ann1), (_, _, ann2) = kube.annotated
    assert (ns1, name1) == ("shop", "web-3-r2")
    assert ann1["helm-e2e.dev/rerun"] != ann2["helm-e2e.dev/rerun"]
    assert "requested a re-run of web" in capsys.readouterr().out


def test_rerun_of_a_release_without_runs_exits_2(
    use_kube: UseKube, capsys: pytest.CaptureFixture[str]
) -> None:
    use_kube(FakeKube())
    assert cli.main(["rerun", "web", "-n", "shop"]) == cli.EXIT_ERROR
    assert "no E2ERun of release web" in capsys.readouterr().err


def test_rerun_with_wait_follows_the_run_made_for_its_token(
    use_kube: UseKube, capsys: pytest.CaptureFixture[str]
) -> None:
    class Operator(FakeKube):  # the operator answers the annotation with a new attempt carrying the token
        def annotate(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
            super().annotate(namespace, name, annotations)
            token = annotations["helm-e2e.dev/rerun"]
            self.listed.append(attempt_body(RunPhase.FAILED, 2, failed("smoke"), key=token))

    kube = Operator(releases={("shop", "web"): [3]})
    kube.listed = [run_body(RunPhase.SUCCEEDED, passed("smoke"))]
    use_kube(kube)
    assert cli.main(["rerun", "web", "-n", "shop", "--wait", "--interval", "0", "--timeout", "5"]) == 1
    out = capsys.readouterr().out
    assert "following E2ERun shop/web-3-r2 (attempt 2)" in out
    assert "web-3-r2: Failed" in out


def test_the_operator_service_is_found_by_its_labels_whatever_the_release_was_named() -> None:
    from helm_e2e.artifacts.client import FetchError, Operator, choose_operator

    found = [("ops", "ops-helm-e2e")]
    assert choose_operator(found, namespace=None, service=None) == Operator("ops", "ops-helm-e2e")
    # what the user names wins, and narrows several candidates to one
    assert choose_operator([], namespace="a", service="b") == Operator("a", "b")
    two = [("ops", "ops-helm-e2e"), ("team", "helm-e2e")]
    assert choose_operator(two, namespace="team", service=None) == Operator("team", "helm-e2e")
    with pytest.raises(FetchError, match=r"several helm-e2e operators \(ops/ops-helm-e2e, team/helm-e2e\)"):
        choose_operator(two, namespace=None, service=None)
    with pytest.raises(FetchError, match="no helm-e2e artifacts Service found"):
        choose_operator(two, namespace="elsewhere", service=None)
