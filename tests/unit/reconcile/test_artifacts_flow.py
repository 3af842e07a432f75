"""Artifacts through the executor: a fake Kube port, a real local store, the collector's upload played by
the test; the pod gets its collector, the finished test records its files, the e-mail carries them, and
pruning deletes them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from controller_harness import NS, passing_hook, status
from fake_kube import Clock, FakeKube
from helm_encoding import helm_release_doc, helm_secret
from prometheus_client import REGISTRY
from tarballs import tar_gz

from helm_e2e.artifacts.service import Artifacts, build_artifacts, sweep_orphans
from helm_e2e.core.model import names
from helm_e2e.errors import StoreError
from helm_e2e.reconcile.controller import Controller
from helm_e2e.settings import Settings

JUNIT = b'<testsuite><testcase classname="t" name="test_a" file="t.py"><failure message="boom"/></testcase></testsuite>'


def settings(tmp_path: Path, **kw: Any) -> Settings:
    kw.setdefault("collector_image", "ghcr.io/helm-e2e/helm-e2e:0.1.0")
    return Settings(
        smtp_host="mail",
        mail_to="ops@example.com",
        pod_ttl_seconds=60,
        resync_seconds=5,
        history_limit=1,
        startup_grace_seconds=10**9,  # the fixtures deployed days ago by the wall clock tokens need
        artifacts_store=str(tmp_path / "store"),
        artifacts_url="http://helm-e2e.ops.svc:8081",
        mail_attachments_max_bytes=kw.pop("budget", 1000),
        **kw,
    )


async def deploy(controller: Controller, kube: FakeKube, revision: int) -> str:
    for secret in kube.secrets.values():
        secret["metadata"]["labels"]["status"] = "superseded"
    secret = helm_secret(
        helm_release_doc(revision=revision, hooks=[passing_hook("api")]),
        name=f"sh.helm.release.v1.web.v{revision}",
    )
    kube.secrets[(NS, secret["metadata"]["name"])] = secret
    await controller.on_release_secret("ADDED", secret)
    run = f"web-{revision}"
    await controller.reconcile((NS, run))
    return run


async def upload_as_the_collector(
    service: Artifacts, kube: FakeKube, pod: str, tmp_path: Path, files: dict[str, bytes]
) -> None:
    body = kube.pods[(NS, pod)]
    (collector,) = [c for c in body["spec"]["initContainers"] if c["name"] == names.COLLECTOR_CONTAINER]
    token = next(e["value"] for e in collector["env"] if e["name"] == names.UPLOAD_TOKEN_ENV)
    claims = await service.verify(token)
    assert claims is not None
    path = tmp_path / "upload.tgz"
    path.write_bytes(tar_gz(files))
    await service.receive(claims, path, now=datetime.now(UTC))


async def test_a_finished_test_records_its_artifacts_and_the_report_carries_them(
    kube: FakeKube, clock: Clock, sent: list[Any], tmp_path: Path
) -> None:
    config = settings(tmp_path)
    service = build_artifacts(config)
    assert service is not None
    clock.now = datetime.now(UTC)  # tokens expire by the wall clock
    controller = Controller(settings=config, kube=kube, clock=clock, artifacts=service)
    run = await deploy(controller, kube, 1)
    pod = kube.pods[(NS, f"{run}-api")]
    assert pod["spec"]["initContainers"][0]["name"] == names.COLLECTOR_CONTAINER
    await upload_as_the_collector(
        service, kube, f"{run}-api", tmp_path, {"junit.xml": JUNIT, "big.har": b"h" * 5000}
    )
    kube.finish_pod(NS, f"{run}-api", exit_code=1)
    for _ in range(4):
        await controller.reconcile((NS, run))

    (api,) = status(kube, run)["tests"]
    assert sorted(f["name"] for f in api["artifacts"]) == ["big.har", "junit.xml"]
    assert api["failures"] == [{"id": "t.py::test_a", "message": "boom"}]
    (message,) = sent
    attached = {p.get_filename(): p.get_content() for p in message.iter_attachments()}
    assert attached == {"api_junit.xml": JUNIT}  # within the budget; the HAR is listed instead
    assert "api/big.har" in message.get_body(preferencelist=("plain",)).get_content()

    # the next revision prunes this run (history limit 1): its artifacts go with it
    uid = kube.runs[(NS, run)]["metadata"]["uid"]
    assert await service.run_manifests(NS, run, uid)
    await deploy(controller, kube, 2)
    kube.finish_pod(NS, "web-2-api", exit_code=0)
    for _ in range(4):
        await controller.reconcile((NS, "web-2"))
    assert (NS, run) not in kube.runs
    assert await service.run_manifests(NS, run, uid) == {}


async def test_a_store_that_fails_leaves_the_test_without_a_collector_not_without_its_pod(
    kube: FakeKube, clock: Clock, sent: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = settings(tmp_path)
    service = build_artifacts(config)
    assert service is not None

    async def broken(*_: Any, **__: Any) -> Any:
        raise StoreError(
            "artifact store file:/x: put 'keys/upload-signing-key': unavailable", reason="Unavailable"
        )

    monkeypatch.setattr(service.store, "put_bytes_if_absent", broken)
    monkeypatch.setattr(service.store, "put_bytes", broken)
    controller = Controller(settings=config, kube=kube, clock=clock, artifacts=service)
    run = await deploy(controller, kube, 1)
    pod = kube.pods[(NS, f"{run}-api")]
    assert all(c["name"] != names.COLLECTOR_CONTAINER for c in pod["spec"].get("initContainers", []))
    # said where an admin looks, never silently: an Event on the run, the metric, and readiness
    warnings = [e for e in kube.events if e[2] == names.EVENT_ARTIFACTS_UNAVAILABLE]
    assert [(e[0], e[1]) for e in warnings] == [(run, "Warning")]
    assert "api: artifacts not collected" in warnings[0][3]
    assert REGISTRY.get_sample_value("helm_e2e_artifact_store_ready") == 0
    assert "cannot be written" in await service.store_problem(fresh=True)
    # ...and on the test itself once it ends
    kube.finish_pod(NS, f"{run}-api", exit_code=0)
    for _ in range(4):
        await controller.reconcile((NS, run))
    (api,) = status(kube, run)["tests"]
    assert api["phase"] == "Succeeded"
    assert (
        api["artifactsMessage"]
        == "artifacts not collected: the artifact store cannot be written (Unavailable)"
    )


async def test_a_writable_store_is_ready_and_a_test_with_its_collector_has_no_message(
    tmp_path: Path,
) -> None:
    service = build_artifacts(settings(tmp_path))
    assert service is not None
    assert await service.store_problem(fresh=True) == ""
    assert REGISTRY.get_sample_value("helm_e2e_artifact_store_ready") == 1


def test_artifacts_are_off_unless_store_url_and_image_are_all_set(tmp_path: Path) -> None:
    assert build_artifacts(Settings()) is None
    assert build_artifacts(settings(tmp_path, collector_image="")) is None
    assert build_artifacts(Settings(artifacts_store=str(tmp_path), collector_image="i")) is None
    assert build_artifacts(settings(tmp_path)) is not None


async def test_the_leaders_sweep_deletes_artifacts_of_runs_deleted_while_nobody_watched(
    tmp_path: Path,
) -> None:
    service = build_artifacts(settings(tmp_path))
    assert service is not None
    for run, uid in (("web-1", "u1"), ("web-2", "u2"), ("web-3", "old-uid")):
        await service.store.put_bytes(f"runs/{NS}/{run}/{uid}/api/manifest.json", b"{}")
    live = {"web-1": "u1", "web-3": "new-uid"}  # web-2 is gone; web-3 is a later run of the same name

    async def get_run(namespace: str, name: str) -> dict[str, Any] | None:
        return {"metadata": {"uid": live[name]}} if name in live else None

    assert await sweep_orphans(service, get_run) == 2
    assert await service.stored_runs() == {(NS, "web-1", "u1")}
