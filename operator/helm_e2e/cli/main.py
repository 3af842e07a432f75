"""`helm-e2e run | wait | rerun | junit | logs | artifacts | ui`.

Exit codes of `wait`: 0 the run Succeeded, 1 it Failed, 2 anything else (Error, Cancelled, Superseded,
timeout, no run, API error) — so a pipeline can gate on `helm upgrade ... && helm-e2e wait RELEASE`.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from helm_e2e.clients.kube import Kube, load_api_client
from helm_e2e.core.lifecycle import reruns
from helm_e2e.core.model import names
from helm_e2e.core.model.dns_names import build_run_name
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_codec import run_from_body, runs_from_bodies
from helm_e2e.core.model.run_status import RunPhase, TestResult
from helm_e2e.core.results import diagnostics
from helm_e2e.core.sources import argocd

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="helm-e2e", description="End-to-end tests after every Helm release.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the operator (in cluster, or against the current kubeconfig)")
    run.add_argument(
        "--liveness", default="", help="kopf liveness endpoint, e.g. http://0.0.0.0:8080/healthz"
    )
    waiting = _add_wait_commands(sub)
    junit, logs, fetch = _add_run_readers(sub)
    _add_ui(sub)
    for sp in (*waiting, junit, logs, fetch):
        sp.add_argument("-n", "--namespace", default=None, help="namespace (default: the kubeconfig's)")
    for sp in (junit, fetch):
        sp.add_argument(
            "--operator-namespace", default=None, help="the operator's namespace (default: found by label)"
        )
        sp.add_argument(
            "--operator-service", default=None, help="the operator's Service (default: found by label)"
        )
    return p


def _add_wait_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> list[argparse.ArgumentParser]:
    wait = sub.add_parser("wait", help="wait for a release's E2ERun; exit 0 Succeeded, 1 Failed, 2 otherwise")
    wait.add_argument("release")
    wait.add_argument("--revision", type=int, help="revision to wait for (default: the latest)")
    wait.add_argument("--timeout", type=float, default=1800, help="seconds to wait (default 1800)")
    wait.add_argument("--interval", type=float, default=2, help="seconds between polls (default 2)")
    wait.add_argument(
        "--require-tests", action="store_true", help="exit 2 when the revision has no tests (default: exit 0)"
    )
    rerun = sub.add_parser(
        "rerun", help="run the deployed revision's tests again (annotates the release's latest E2ERun)"
    )
    rerun.add_argument("release", help="a Helm release, or an Argo CD application (its latest sync)")
    rerun.add_argument("--wait", action="store_true", help="then wait for the new run, exit codes as wait")
    rerun.add_argument("--timeout", type=float, default=1800, help="seconds to wait (default 1800)")
    rerun.add_argument("--interval", type=float, default=2, help="seconds between polls (default 2)")
    return [wait, rerun]


def _add_run_readers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser, argparse.ArgumentParser]:
    """`junit`, `logs`, `artifacts`: what one E2ERun recorded."""
    junit = sub.add_parser("junit", help="print an E2ERun as JUnit XML")
    junit.add_argument("run", help="E2ERun name, e.g. web-3")
    logs = sub.add_parser(
        "logs",
        help="print the recorded log tails of an E2ERun (after the diagnostics of a test that did not pass)",
    )
    logs.add_argument("run")
    logs.add_argument("test", nargs="?", help="only this test")
    fetch = sub.add_parser(
        "artifacts", help="fetch the files an E2ERun's tests left (through the apiserver's service proxy)"
    )
    fetch.add_argument("run")
    fetch.add_argument("test", nargs="?", help="only this test")
    fetch.add_argument("-o", "--output", default=".", help="directory to write <test>/... into (default .)")
    return junit, logs, fetch


def _add_ui(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ui = sub.add_parser("ui", help="a read-only web viewer of E2ERuns, with your kubeconfig's rights")
    ui.add_argument("--port", type=int, default=8484, help="port to serve on (default 8484; 0: any free)")
    ui.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ui.add_argument(
        "-n", "--namespace", dest="namespaces", action="append", default=[],
        help="a namespace to show (repeatable; default: all you may list, else the kubeconfig's)",
    )  # fmt: skip
    ui.add_argument("--operator-namespace", default=None, help="the operator's namespace (artifacts)")
    ui.add_argument("--operator-service", default=None, help="the operator's Service (artifacts)")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        from helm_e2e.runtime.main import run_operator  # kopf is only imported to run the operator

        run_operator(liveness=args.liveness)
        return EXIT_OK
    if args.command == "ui":
        from helm_e2e.viewer.server import serve  # aiohttp's server is only imported to serve the viewer

        return serve(
            address=args.address, port=args.port, namespaces=args.namespaces,
            operator_namespace=args.operator_namespace, operator_service=args.operator_service,
        )  # fmt: skip
    return _ask_the_cluster(args)


def _ask_the_cluster(args: argparse.Namespace) -> int:
    """`wait`, `rerun`, `junit`, `logs`, `artifacts`: with the user's kubeconfig."""
    try:
        kube = Kube(load_api_client())
        namespace = args.namespace or _default_namespace()
        if args.command == "wait":
            return asyncio.run(
                wait_for_run(
                    kube, namespace, args.release, revision=args.revision, timeout=args.timeout,
                    interval=args.interval, require_tests=args.require_tests,
                )
            )  # fmt: skip
        if args.command == "rerun":
            return asyncio.run(request_rerun(kube, namespace, args.release, args=args))
        run = asyncio.run(_get_run(kube, namespace, args.run))
        if run is not None and args.command == "artifacts":
            return asyncio.run(_fetch_artifacts(kube, args, namespace, run))
        reports = asyncio.run(_junit_reports(kube, args, namespace, run)) if args.command == "junit" else {}
    except Exception as e:  # a CLI turns every failure into one clear line and exit code 2
        print(f"helm-e2e: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    if run is None:
        print(f"helm-e2e: error: E2ERun {namespace}/{args.run} not found", file=sys.stderr)
        return EXIT_ERROR
    if args.command == "junit":
        from helm_e2e.core.outcomes.junit_report import build_junit_xml  # xml: only to print JUnit

        print(build_junit_xml(run, reports))
        return EXIT_OK
    return print_logs(run, args.test)


async def _fetch_artifacts(kube: Kube, args: argparse.Namespace, namespace: str, run: Run) -> int:
    from helm_e2e.artifacts.client import fetch_artifacts, find_operator  # tarfile: only to fetch artifacts

    operator = await find_operator(kube, namespace=args.operator_namespace, service=args.operator_service)
    return await fetch_artifacts(kube, operator, namespace, run.name, test=args.test, into=Path(args.output))


async def _junit_reports(
    kube: Kube, args: argparse.Namespace, namespace: str, run: Run | None
) -> dict[str, bytes]:
    """The tests' junit.xml artifacts; without them (no artifacts, no access) one testcase per test."""
    if run is None or not any(t.artifacts for t in run.status.tests):
        return {}
    from helm_e2e.artifacts.client import fetch_junit_reports, find_operator

    try:
        operator = await find_operator(kube, namespace=args.operator_namespace, service=args.operator_service)
        return await fetch_junit_reports(kube, operator, namespace, run.name)
    except Exception as e:  # the run's own results still make a report
        print(
            f"helm-e2e: warning: junit.xml artifacts not fetched ({e}); one testcase per test",
            file=sys.stderr,
        )
        return {}


def _default_namespace() -> str:
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
        return str(active.get("context", {}).get("namespace") or "default")
    except Exception:  # in cluster or no kubeconfig: the default namespace
        return "default"


async def _get_run(kube: Kube, namespace: str, name: str) -> Run | None:
    body = await kube.get_run(namespace, name)
    return run_from_body(body) if body else None


async def annotate_run(kube: Kube, namespace: str, name: str, annotations: dict[str, str]) -> None:
    """A merge patch of an E2ERun's annotations with the *user's* credentials: the operator itself never
    patches runs (so its RBAC has no such rule), it only reads the request."""
    body = {"metadata": {"annotations": annotations}}
    patch = kube.custom.patch_namespaced_custom_object
    await asyncio.to_thread(patch, names.GROUP, names.VERSION, namespace, names.RUNS, name, body)


async def request_rerun(kube: Kube, namespace: str, release: str, *, args: argparse.Namespace) -> int:
    """A fresh token in helm-e2e.dev/rerun on the release's latest E2ERun; the operator does the rest."""
    latest = reruns.newest_run(runs_from_bodies(await kube.list_runs(namespace, release)))
    if latest is None:
        print(f"helm-e2e: error: no E2ERun of release {release} in namespace {namespace}", file=sys.stderr)
        return EXIT_ERROR
    token = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    await annotate_run(kube, namespace, latest.name, {reruns.RERUN_ANNOTATION: token})
    print(f"requested a re-run of {release} (token {token}, on E2ERun {latest.name})", flush=True)
    if not args.wait:
        return EXIT_OK
    argo = argocd.application_of(latest) is not None  # no Helm revisions: follow the run's own sync
    return await wait_for_run(
        kube,
        namespace,
        release,
        revision=latest.spec.release.revision if argo else None,
        timeout=args.timeout,
        interval=args.interval,
        token=token,
        run_name=latest.name if argo else "",
    )


async def _followed_run(
    kube: Kube, namespace: str, release: str, *, revision: int, token: str, name: str
) -> Run | None:
    """The newest attempt of the revision (with `token`: the run made for that request, once it exists)."""
    runs = runs_from_bodies(await kube.list_runs(namespace, release))
    if token:
        return next((r for r in runs if r.spec.request and r.spec.request.token == token), None)
    return reruns.newest_run(runs, revision=revision) or await _get_run(kube, namespace, name)


async def _latest_revision(kube: Kube, namespace: str, release: str) -> int | None:
    versions = [int(lab.get("version", 0)) for lab in await kube.release_secret_labels(namespace, release)]
    return max(versions) if versions else None


async def wait_for_run(
    kube: Kube,
    namespace: str,
    release: str,
    *,
    revision: int | None,
    timeout: float,  # noqa: ASYNC109 - a wall-clock budget, printed in the error
    interval: float,
    require_tests: bool = False,
    token: str = "",
    run_name: str = "",
) -> int:
    deadline = time.monotonic() + timeout
    if revision is None:
        revision = await _latest_revision(kube, namespace, release)
        if revision is None:
            print(f"helm-e2e: error: no Helm release {release} in namespace {namespace}", file=sys.stderr)
            return EXIT_ERROR
    name = run_name or build_run_name(release, revision)
    print(f"waiting for E2ERun {namespace}/{name} (release {release} revision {revision})", flush=True)
    seen: dict[str, str] = {}
    found = False  # a run without tests yet (Pending) exists all the same
    while time.monotonic() < deadline:
        run = await _followed_run(kube, namespace, release, revision=revision, token=token, name=name)
        if run is not None:
            found = True
            if run.name != name:
                name = run.name
                print(f"following E2ERun {namespace}/{name} (attempt {run.spec.attempt or 1})", flush=True)
            print_progress(run, seen)
            if run.status.phase.is_final:
                print_summary(run)
                return exit_code(run.status.phase, require_tests=require_tests)
        await asyncio.sleep(interval)
    print(
        f"helm-e2e: error: timed out after {timeout:g}s waiting for E2ERun {namespace}/{name}"
        + ("" if found else " (no run yet: does the release have tests, and is the operator running?)"),
        file=sys.stderr,
    )
    return EXIT_ERROR


def print_progress(run: Run, seen: dict[str, str]) -> None:
    """A line per test whose state changed since the last poll (`seen`: the lines printed so far)."""
    for test in run.status.tests:
        line = progress_line(test)
        if seen.get(f"{run.name}/{test.name}") != line:
            seen[f"{run.name}/{test.name}"] = line
            print(line, flush=True)


def progress_line(test: TestResult) -> str:
    line = f"  {test.name}: {test.phase.value}"
    if test.exit_code is not None and test.phase.is_final:
        line += f" (exit code {test.exit_code}{', ' + test.reason if test.reason else ''})"
    elif test.phase.is_final and test.reason:  # never ran: policy, API refusal, timeout
        line += f" ({test.reason}{': ' + test.message if test.message else ''})"
    if test.flaky:  # passed, but not at once: worth a look
        line += f" [flaky: passed on attempt {test.attempt or 1}]"
    elif test.attempts and test.phase.is_final:
        line += f" [after {len(test.attempts)} attempts]"
    elif test.attempt and not test.phase.is_final:
        line += f" [attempt {test.attempt}]"
    if test.pytest and test.phase.is_final:  # what pytest itself counted, and what failed
        p = test.pytest
        line += f"; pytest: {p.passed} passed, {p.failed} failed, {p.errors} errors"
        line += "".join(f"\n    FAILED {f}" for f in p.first_failures)
    return line


def exit_code(phase: RunPhase, *, require_tests: bool) -> int:
    if phase == RunPhase.NO_TESTS:
        return EXIT_ERROR if require_tests else EXIT_OK
    return {RunPhase.SUCCEEDED: EXIT_OK, RunPhase.FAILED: EXIT_FAILED}.get(phase, EXIT_ERROR)


def print_summary(run: Run) -> None:
    if run.status.phase == RunPhase.NO_TESTS:
        print(f"{run.name}: no tests (the chart has no test hooks and no E2ESuite matches)", flush=True)
        return
    s = run.status.summary
    print(
        f"{run.name}: {run.status.phase.value} — {s.passed}/{s.total} passed, {s.failed} failed, "
        f"{s.errored} errored{f', {s.flaky} flaky' if s.flaky else ''} "
        f"(image tag {run.spec.release.image_tag or '-'})",
        flush=True,
    )


def print_logs(run: Run, test: str | None) -> int:
    tests = [t for t in run.status.tests if test is None or t.name == test]
    if test is not None and not tests:
        known = ", ".join(t.name for t in run.status.tests) or "none"
        print(f"helm-e2e: error: no test {test} in {run.name} (tests: {known})", file=sys.stderr)
        return EXIT_ERROR
    for t in tests:
        if test is None:
            print(f"==> {t.name} ({t.phase.value}) <==")
        for line in diagnostics.format_diagnostics(t):  # a test that did not pass: what explains it
            print(line)
        print(t.log_tail or "(no log recorded)")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
