"""The e-mail channel's sender: render the report (with its attachments and the release's history) and hand
it to SMTP once. The outbox (reconcile/deliver.py) records the outcome."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog
from pydantic import ValidationError

from helm_e2e import errors
from helm_e2e.clients.kube_port import KubePort
from helm_e2e.clients.smtp import send_email
from helm_e2e.core.artifacts import rules as artifact_rules
from helm_e2e.core.lifecycle.decide import first_of_release
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_codec import runs_from_bodies
from helm_e2e.core.outcomes import report as reporting
from helm_e2e.reconcile.recent_runs import RecentRuns
from helm_e2e.settings import Settings

if TYPE_CHECKING:  # the artifact stack (obstore, jwt, tarfile) is imported only when artifacts are on
    from helm_e2e.artifacts.service import Artifacts

log = structlog.get_logger(__name__)


class MailSender:
    def __init__(
        self,
        *,
        settings: Settings,
        kube: KubePort,
        artifacts: Artifacts | None,
        recent: RecentRuns | None = None,
    ) -> None:
        self.settings, self.kube, self.artifacts = settings, kube, artifacts
        self.recent = recent if recent is not None else RecentRuns()

    async def send(self, run: Run, recipients: Sequence[str]) -> str:
        """One attempt; what the channel's message says of a success. MailError when not delivered."""
        history = await self._report_history(run)
        try:
            attached, files = await self._attachments(run)
            report = reporting.render_report(
                run, cluster=self.settings.cluster_name, attached=attached, history=history
            )
            message = reporting.build_email(
                report, sender=self.settings.mail_from, recipients=recipients, attachments=files
            )
            await send_email(message, settings=self.settings)
        except errors.MailError:
            raise
        except Exception as e:  # a report that cannot even be built must end the channel, not loop it
            raise errors.MailError(
                f"the report could not be built or sent ({type(e).__name__})", permanent=True
            ) from e
        return f"sent to {len(recipients)} recipient(s)"

    async def _report_history(self, run: Run) -> list[Run]:
        """The release's runs for the report's history strip; without them (the API failed, a run that does
        not parse) the report goes out without the strip rather than not at all. Those its final pass listed
        for the regression verdict if they are at hand; none for a release's first run (only itself)."""
        if first_of_release(run):
            return []
        if (kept := self.recent.take((run.namespace, run.name))) is not None:
            return kept
        try:
            return runs_from_bodies(await self.kube.list_runs(run.namespace, run.spec.release.name))
        except (errors.KubeError, ValidationError, KeyError) as e:
            log.warning(
                "report.history_unavailable", run=run.name, namespace=run.namespace, error=type(e).__name__
            )
            return []

    async def _attachments(self, run: Run) -> tuple[list[artifact_rules.Attachment], list[tuple[str, bytes]]]:
        """The artifacts the e-mail carries (smallest first, within the budget); the rest it lists. A store
        that cannot be read costs the attachments, never the report."""
        budget = self.settings.mail_attachments_max_bytes
        stored = [(t.name, f) for t in run.status.tests for f in t.artifacts]
        if self.artifacts is None or not stored or budget <= 0:
            return [], []
        chosen, _ = artifact_rules.choose_attachments(stored, budget=budget)
        attached: list[artifact_rules.Attachment] = []
        files: list[tuple[str, bytes]] = []
        try:
            for test in dict.fromkeys(a.test for a in chosen):
                manifest = await self.artifacts.manifest(run.namespace, run.name, run.uid, test)
                wanted = {a.file.name for a in chosen if a.test == test}
                found = (
                    await self.artifacts.read_files(manifest, wanted, max_bytes=budget) if manifest else {}
                )
                for a in (a for a in chosen if a.test == test and a.file.name in found):
                    attached.append(a)
                    files.append((a.filename, found[a.file.name]))
        except errors.StoreError as e:
            log.warning("mail.attachments_unavailable", run=run.name, namespace=run.namespace, error=str(e))
            return [], []
        return attached, files
