"""`helm-e2e ui` against the real local cluster (real apiserver, kwok pods, real helm, the real operator),
driven in Debian's headless Chromium by Playwright: the pages render the real runs, a filter narrows them, a
`helm upgrade` arrives on the open runs page without a reload, the JUnit download parses, and a user whose
Role covers one namespace sees none of another's runs. Screenshots of each page go to docs/viewer/.

Chromium is Debian's (/usr/bin/chromium, `apt-get install chromium`; .ci/run installs it): a missing browser
fails these tests, never skips them.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml
from harness import ROOT, Cluster, OperatorProcess, free_tcp_port, node_ip, wait_until
from playwright.sync_api import Browser, Page, sync_playwright
from test_artifacts import DEMO, JUNIT, collector_env, expose_operator, suite, tar_gz, upload
from test_operator import wait_run

from helm_e2e.core.model import names
from helm_e2e.core.model.release import Trigger
from helm_e2e.core.model.run import ReleaseRef, RunSpec, TestSource
from helm_e2e.core.model.run_codec import build_run_body

TINY = str(ROOT / "tests" / "data" / "charts" / "tiny")
HELM_E2E = str(ROOT / ".venv" / "bin" / "helm-e2e")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SHOTS = ROOT / "docs" / "viewer"
FAILING_ID = "tests/test_api.py::test_token"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"  # the deploy's git commit, a release label (helm --labels)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: apt-get install -y chromium"
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda e: errors.append(str(e)))
    yield opened
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


@contextmanager
def viewer(env: dict[str, str], log: Path, *args: str) -> Iterator[str]:
    """`helm-e2e ui` as a subprocess on a free port: its URL once it says it serves."""
    port = free_tcp_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([HELM_E2E, "ui", "--port", str(port), *args], env=env, stdout=out, stderr=out)
    try:
        wait_until(
            lambda: "serving http://127.0.0.1:" in log.read_text() or proc.poll() is not None,
            timeout=30,
            what="helm-e2e ui to serve",
        )
        assert proc.poll() is None, log.read_text()
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as reply:  # noqa: S310 - the viewer on 127.0.0.1
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.loads(e.read())


def shown_runs(page: Page) -> set[str]:
    return {r.get_attribute("data-run") or "" for r in page.locator("#runs-body tr[data-run]").all()}


def fail_values(path: Path) -> Path:
    summary = {"passed": 4, "failed": 1, "skipped": 0, "errors": 0, "firstFailures": [FAILING_ID]}
    path.write_text(json.dumps({"test": {"exitCode": "1", "terminationMessage": json.dumps(summary)}}))
    return path


def assert_keyboard_and_labels(page: Page) -> None:
    """The first Tab reaches the skip link, which moves focus to the content; every field has a label."""
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "f-namespace"
    unlabelled = "[...document.querySelectorAll('input, select')].filter(e => !e.labels.length).length"
    assert page.evaluate(unlabelled) == 0


def assert_release_page(page: Page, url: str, namespace: str) -> None:
    """A row per revision with its commit where known, the chart, the regressions of r2 and r3."""
    page.goto(f"{url}/releases/{namespace}/shop")
    page.wait_for_selector("#revisions tbody tr")
    revisions = [r.get_attribute("data-revision") for r in page.locator("#revisions tbody tr").all()]
    assert revisions == ["3", "2", "1"]
    assert page.locator("svg.chart rect").count() == 3
    assert page.locator('#revisions tr[data-revision="3"] td.commit code').get_attribute("title") == SHA
    assert page.locator('#revisions tr[data-revision="2"] td.commit').inner_text() == "-"
    regressions = page.locator("#regressions").inner_text()
    assert f"shop-smoke::{FAILING_ID}" in regressions
    assert "Newly failing" in regressions
    assert "Fixed" in regressions
    page.screenshot(path=str(SHOTS / "release.png"), full_page=True)
    status, history = get(f"{url}/api/v1/namespaces/{namespace}/releases/shop")
    assert status == 200
    assert [(r["revision"], r["imageTag"], r["phase"], r["commit"]) for r in history["revisions"]] == [
        (3, "3.0.0", "Succeeded", SHA),
        (2, "2.0.0", "Failed", ""),
        (1, "1.0.0", "Succeeded", ""),
    ]


def assert_run_page(page: Page, url: str, namespace: str) -> None:
    """Exit code, pytest counts and first failure, the log tail, Events; the JUnit download parses."""
    page.goto(f"{url}/runs/{namespace}/shop-2")
    test = page.locator('section.test[data-test="shop-smoke"]')
    test.wait_for()
    text = test.inner_text()
    assert "Exit code\n1" in text
    assert "pytest: 4 passed, 1 failed" in text
    assert FAILING_ID in text
    assert "AssertionError: 401 != 200" in text
    assert "TestFailed" in page.locator("#events").inner_text()
    page.screenshot(path=str(SHOTS / "run.png"), full_page=True)
    with page.expect_download() as download:
        page.click("#junit")
    junit = ElementTree.parse(download.value.path()).getroot()
    cases = list(junit.iter("testcase"))
    assert cases
    assert any(c.find("failure") is not None for c in cases)


def test_the_viewer_shows_real_runs_filters_them_follows_an_upgrade_live_and_serves_junit(
    cluster: Cluster, namespace: str, start_operator: Any, page: Page, tmp_path: Path
) -> None:
    start_operator()
    cluster.helm("install", "shop", TINY, "-n", namespace, "--set", "image.tag=1.0.0")
    wait_run(cluster, namespace, "shop-1")
    cluster.serve_log(
        namespace=namespace,
        pod="shop-2-shop-smoke",
        workdir=tmp_path,
        lines=["collected 5 items", f"FAILED {FAILING_ID} - AssertionError: 401 != 200"],
    )
    cluster.helm(
        "upgrade", "shop", TINY, "-n", namespace, "--set", "image.tag=2.0.0",
        "-f", str(fail_values(tmp_path / "failing.yaml")),
    )  # fmt: skip
    assert wait_run(cluster, namespace, "shop-2")["status"]["phase"] == "Failed"

    with viewer(cluster.env, tmp_path / "ui.log") as url:
        # the runs page renders the real runs; a phone-sized screenshot shows the one-column layout
        page.goto(f"{url}/?namespace={namespace}")
        page.wait_for_selector(f'tr[data-run="{namespace}/shop-2"]')
        assert shown_runs(page) == {f"{namespace}/shop-1", f"{namespace}/shop-2"}
        assert page.locator(f'tr[data-run="{namespace}/shop-2"]').get_attribute("data-phase") == "Failed"

        # a filter: phase Failed leaves revision 2 only
        page.select_option("#f-phase", "Failed")
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**phase=Failed**")
        page.wait_for_selector("#runs-body tr")
        assert shown_runs(page) == {f"{namespace}/shop-2"}

        # live: an upgrade shows up on the open page, no reload (a marker on window survives)
        page.goto(f"{url}/?namespace={namespace}")
        page.wait_for_selector(f'tr[data-run="{namespace}/shop-1"]')
        page.wait_for_function("document.getElementById('live').textContent.startsWith('Live')")
        page.evaluate("window.__notReloaded = true")
        cluster.helm(
            "upgrade", "shop", TINY, "-n", namespace, "--set", "image.tag=3.0.0", "--labels", f"helm-e2e.dev/revision={SHA}"
        )  # fmt: skip
        page.wait_for_selector(f'tr[data-run="{namespace}/shop-3"][data-phase="Succeeded"]', timeout=90_000)
        assert page.evaluate("window.__notReloaded") is True
        page.screenshot(path=str(SHOTS / "runs.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(SHOTS / "runs-phone.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 860})
        assert_keyboard_and_labels(page)
        assert_release_page(page, url, namespace)
        assert_run_page(page, url, namespace)


def token_kubeconfig(cluster: Cluster, token: str, namespace: str, path: Path) -> Path:
    """A kubeconfig with the ServiceAccount's token only (no client certificate): its rights alone."""
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": admin["clusters"][0]["cluster"]}],
        "users": [{"name": "viewer", "user": {"token": token}}],
        "contexts": [
            {"name": "viewer", "context": {"cluster": "local", "user": "viewer", "namespace": namespace}}
        ],
        "current-context": "viewer",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def hand_made_run(cluster: Cluster, namespace: str, release: str) -> None:
    """An E2ERun as the operator writes one (no operator watches these namespaces), final Succeeded."""
    spec = RunSpec(
        release=ReleaseRef(
            name=release, namespace=namespace, revision=1, chart="tiny", chart_version="0.1.0",
            image_tag="1.0.0", trigger=Trigger.INSTALL,
        ),
        tests=[TestSource(name="smoke", source="hook", timeout_seconds=60)],
    )  # fmt: skip
    cluster.kubectl(
        "create", "-f", "-", input=json.dumps(build_run_body(spec, name=f"{release}-1", namespace=namespace))
    )
    status = {"status": {"phase": "Succeeded", "summary": {"total": 1, "passed": 1}}}
    cluster.kubectl(
        "patch", "e2erun", f"{release}-1", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps(status),
    )  # fmt: skip


def test_a_user_without_rights_in_a_namespace_sees_none_of_its_runs(
    crds: Cluster, namespace: str, page: Page, tmp_path: Path
) -> None:
    cluster, other = crds, f"t-viewer-other-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", other)
    try:
        hand_made_run(cluster, namespace, "mine")
        hand_made_run(cluster, other, "secret")
        cluster.kubectl("create", "serviceaccount", "viewer", "-n", namespace)
        cluster.kubectl(
            "create", "role", "viewer", "-n", namespace, "--verb=get,list,watch",
            "--resource=e2eruns.helm-e2e.dev,events",
        )  # fmt: skip
        cluster.kubectl(
            "create", "rolebinding", "viewer", "-n", namespace, "--role=viewer",
            f"--serviceaccount={namespace}:viewer",
        )  # fmt: skip
        token = cluster.kubectl("create", "token", "viewer", "-n", namespace).stdout.strip()
        env = {**cluster.env, "KUBECONFIG": str(token_kubeconfig(cluster, token, namespace, tmp_path / "kc"))}

        # named namespaces: the one the Role covers is shown, the other is said to be refused
        with viewer(env, tmp_path / "ui.log", "--namespace", namespace, "--namespace", other) as url:
            page.goto(url)
            page.wait_for_selector(f'tr[data-run="{namespace}/mine-1"]')
            assert shown_runs(page) == {f"{namespace}/mine-1"}
            assert other in page.locator("#forbidden").inner_text()
            page.screenshot(path=str(SHOTS / "forbidden.png"), full_page=True)
            assert get(f"{url}/api/v1/runs?namespace={other}")[1] == {
                "items": [],
                "listed": 0,
                "forbidden": [other],
                "continue": None,
            }
            status, body = get(f"{url}/api/v1/namespaces/{other}/runs/secret-1")
            assert status == 403
            assert "secret" not in json.dumps(body).replace(other, "")
            assert get(f"{url}/api/v1/namespaces/{other}/releases/secret")[0] == 403
            assert get(f"{url}/api/v1/namespaces/{namespace}/runs/mine-1")[0] == 200

        # no namespace named: not allowed cluster-wide, so the kubeconfig's namespace alone
        with viewer(env, tmp_path / "ui2.log") as url:
            assert f"namespaces {namespace})" in (tmp_path / "ui2.log").read_text()
            status, listed = get(f"{url}/api/v1/runs")
            assert (status, [r["name"] for r in listed["items"]]) == (200, ["mine-1"])
    finally:
        cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


def test_the_run_page_lists_a_runs_artifacts_and_downloads_them_through_the_service_proxy(
    crds: Cluster, namespace: str, page: Page, tmp_path: Path
) -> None:
    """The operator's artifacts server behind a Service, reached through the apiserver's service proxy with
    the user's rights, exactly as `helm-e2e artifacts`; the test plays the collector (kwok runs nothing)."""
    cluster, port = crds, free_tcp_port()
    op = OperatorProcess(
        cluster,
        namespace,
        tmp_path,
        {
            "HELM_E2E_ARTIFACTS_STORE": str(tmp_path / "store"),
            "HELM_E2E_ARTIFACTS_URL": f"http://{node_ip()}:{port}",
            "HELM_E2E_ARTIFACTS_PORT": str(port),
            "HELM_E2E_COLLECTOR_IMAGE": "localhost/helm-e2e:dev",
            "HELM_E2E_RUN_CHART_HOOKS": "false",
        },
    ).start()
    try:
        cluster.apply(suite("ui", seconds=8, exit_code=1), namespace)
        cluster.helm("install", "demo", DEMO, "-n", namespace)
        env = collector_env(cluster, namespace, "demo-1-ui")
        shot = b"\x89PNG" + secrets.token_bytes(2000)
        files = {"junit.xml": JUNIT, "screens/login.png": shot}
        status, answer = upload(env[names.UPLOAD_URL_ENV], env[names.UPLOAD_TOKEN_ENV], tar_gz(files))
        assert status == 201, answer
        wait_run(cluster, namespace, "demo-1", timeout=90)
        expose_operator(cluster, namespace, port)

        with viewer(cluster.env, tmp_path / "ui.log", "--operator-namespace", namespace) as url:
            page.goto(f"{url}/runs/{namespace}/demo-1")
            page.wait_for_selector("#artifacts tbody tr")
            listed = page.locator("#artifacts").inner_text()
            assert "junit.xml" in listed
            assert "screens/login.png" in listed
            page.screenshot(path=str(SHOTS / "artifacts.png"), full_page=True)
            with page.expect_download() as download:
                page.click("#artifacts a:text('screens/login.png')")
            assert Path(download.value.path()).read_bytes() == shot
            # the JUnit download now has one testcase per pytest test, from the stored junit.xml
            with page.expect_download() as download:
                page.click("#junit")
            cases = {c.get("name"): c for c in ElementTree.parse(download.value.path()).iter("testcase")}
            assert cases["tests/test_ui.py::test_login"].find("failure") is not None
            assert cases["tests/test_ui.py::test_home"].find("failure") is None
        annotations = (
            cluster.get_json("e2erun", "-n", namespace, "demo-1")["metadata"].get("annotations") or {}
        )
        assert names.ARTIFACTS_TICKET_ANNOTATION not in annotations  # every ticket removed again
    finally:
        op.stop()
