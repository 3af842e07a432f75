"""After a run is final: the report e-mail (with its attachments and the release's history) and the rollback.

Each is one attempt whose outcome is recorded at once with a status write that cannot conflict (no
precondition): a conflict after a send or a `helm rollback` must never lead to a second one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import structlog
from pydantic import ValidationError

from helm_e2e import errors
from helm_e2e.clients import metrics
from helm_e2e.clients.helm import HelmPort
from helm_e2e.clients.kube import ObjectRef
from helm_e2e.clients.kube_port import KubePort
from helm_e2e.clients.smtp import send_email
from helm_e2e.core.artifacts import rules as artifact_rules
from helm_e2e.core.lifecycle import decide, reruns
from helm_e2e.core.model import names
from helm_e2e.core.model.run_codec import runs_from_bodies, status_body
from helm_e2e.core.model.schema import RollbackRecord, Run
from helm_e2e.core.outcomes import report as reporting
from helm_e2e.core.outcomes import rollback as rollbacks
from helm_e2e.settings import Settings

if TYPE_CHECKING:  # the artifact stack (obstore, jwt, tarfile) is imported only when artifacts are on
    from helm_e2e.artifacts.service import Artifacts

log = structlog.get_logger(__name__)


def run_ref(run: Run) -> ObjectRef:
    return ObjectRef(names.RUN_KIND, names.API_VERSION, run.namespace, run.name, run.uid)


class Outcomes:
    def __init__(
        self,
        *,
        settings: Settings,
        kube: KubePort,
        helm: HelmPort,
        artifacts: Artifacts | None,
        policy: decide.Policy,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings, self.kube, self.helm, self.artifacts = settings, kube, helm, artifacts
        self.policy, self.now = policy, clock

    async def send_report(self, run: Run, recipients: Sequence[str]) -> float | None:
        """Send once, then record the outcome at once with a write that cannot conflict (no precondition):
        a status conflict after a send must never lead to a second send."""
        error, permanent = "", False
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
        except errors.MailError as e:
            error, permanent = str(e), e.permanent
        except Exception as e:  # a report that cannot even be built must end the outbox, not loop it
            error, permanent = f"the report could not be built or sent ({type(e).__name__})", True
        status, again = decide.record_mail_outcome(
            run,
            now=self.now(),
            policy=self.policy,
            recipients=len(recipients),
            error=error,
            permanent=permanent,
        )
        await self.kube.patch_run_status(run.namespace, run.name, status_body(status))
        result = names.MAIL_SENT if not error else (names.MAIL_FAILED if permanent else names.MAIL_RETRYING)
        metrics.EMAILS.labels(result=result).inc()
        if error:
            log.warning(
                "mail.failed",
                run=run.name,
                namespace=run.namespace,
                permanent=permanent,
                attempts=status.email_attempts,
                error=error,
            )
        else:
            log.info("mail.sent", run=run.name, namespace=run.namespace, recipients=len(recipients))
        return again

    async def _report_history(self, run: Run) -> list[Run]:
        """The release's runs for the report's history strip; without them (the API failed, a run that does
        not parse) the report goes out without the strip rather than not at all."""
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

    async def rollback(self, run: Run, action: decide.Rollback) -> float:
        """Run helm once (the intent is already recorded), then record the outcome at once with a write that
        cannot conflict: a status conflict after the call must never lead to a second call."""
        ref = run.spec.release
        record = action.status.rollback or RollbackRecord(target=action.target, attempts=1)
        log.info("rollback.started", run=run.name, namespace=run.namespace, target=action.target)
        result = await self.helm.rollback(release=ref.name, namespace=ref.namespace, revision=action.target)
        created = None
        if result.ok:  # the revision helm wrote: the deployed one now, newer than the failing one
            labels = await self.kube.release_secret_labels(ref.namespace, ref.name)
            deployed = reruns.deployed_revision(labels)
            created = deployed if deployed and deployed > ref.revision else None
        outcome = rollbacks.record_rollback_outcome(
            action.status, record, now=self.now(), error=result.error, revision=created
        )
        await self.kube.patch_run_status(run.namespace, run.name, status_body(outcome.status))
        await self.kube.post_event(
            run_ref(run), type=outcome.event[0], reason=names.EVENT_ROLLED_BACK, message=outcome.event[1]
        )
        metrics.ROLLBACKS.labels(result=outcome.result).inc()
        log_call = log.info if result.ok else log.warning
        log_call(
            "rollback.done", run=run.name, namespace=run.namespace, target=action.target, error=result.error
        )
        return 0.0
