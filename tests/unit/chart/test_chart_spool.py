"""The operator's /tmp, where uploads spool before they are inspected, is bounded and holds every upload slot."""

from __future__ import annotations

from typing import Any

from chart_render import mebibytes, needs_helm, operator_env, render_chart

from helm_e2e.artifacts.server import UPLOAD_SLOTS, upload_limit
from helm_e2e.settings import Settings


def _tmp_volume(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (tmp,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "tmp"]
    return tmp  # type: ignore[no-any-return]


@needs_helm
def test_the_spool_volume_is_limited_and_holds_every_upload_slots_body() -> None:
    docs = render_chart()
    limit = mebibytes(_tmp_volume(docs)["emptyDir"]["sizeLimit"])
    env = operator_env(docs)
    settings = Settings(
        artifacts_max_test_bytes=int(env["HELM_E2E_ARTIFACTS_MAX_TEST_BYTES"]),
        artifacts_max_files=int(env["HELM_E2E_ARTIFACTS_MAX_FILES"]),
    )
    spooled = UPLOAD_SLOTS * upload_limit(settings) / 2**20
    assert limit >= spooled + 100, f"{limit} MiB for {spooled:.0f} MiB of uploads and some room"
    assert limit <= 4 * 1024  # a limit, not a formality


@needs_helm
def test_the_spool_limit_can_be_raised_or_left_out() -> None:
    assert _tmp_volume(render_chart("tmpSizeLimit=4Gi"))["emptyDir"] == {"sizeLimit": "4Gi"}
    assert _tmp_volume(render_chart("tmpSizeLimit="))["emptyDir"] == {}
