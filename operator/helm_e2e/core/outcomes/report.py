"""The deploy report: subject, text and HTML bodies, recipients, Message-ID, the e-mail itself (pure).

The Run model holds no release values or secret data, so nothing of that kind can reach a report;
nothing else is added here. The HTML part is rendered with Jinja2 autoescape on (hostile log lines
are escaped), inline styles only and no external resources, so it reads the same in common mail clients.
"""

from __future__ import annotations

import functools
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.errors import MessageError
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from helm_e2e.core.artifacts.rules import Attachment
from helm_e2e.core.model import names
from helm_e2e.core.model.run import RequestTrigger, Run
from helm_e2e.core.model.run_status import RunPhase, TestPhase, TestResult
from helm_e2e.core.model.text import clean_log
from helm_e2e.core.outcomes import history_strip as histories
from helm_e2e.core.plan.recipients import check_recipients
from helm_e2e.core.results import regressions
from helm_e2e.core.sources import argocd
from helm_e2e.errors import MailError

if TYPE_CHECKING:
    import jinja2

PHASE_COLORS = {
    "Succeeded": "#1a7f37",
    "Failed": "#cf222e",
    "Error": "#bc4c00",
    "Cancelled": "#57606a",
    "Superseded": "#57606a",
    "NoTests": "#57606a",
    "Running": "#0969da",
    "Pending": "#57606a",
}
_SUBJECT_LABELS = {RunPhase.SUCCEEDED: "PASSED", RunPhase.FAILED: "FAILED", RunPhase.ERROR: "ERROR"}


_SAFE_TYPES = frozenset(
    {"text/plain", "text/xml", "application/xml", "application/json", "text/csv", "image/png", "image/jpeg"}
    | {"image/gif", "image/webp", "application/pdf"}
)


@dataclass(frozen=True)
class Report:
    subject: str
    text: str
    html: str
    message_id: str
    date: datetime | None = None  # when the run completed: the same run always yields the same e-mail


def build_message_id(run_uid: str) -> str:
    """Deterministic: a repeated send after a crash carries the same Message-ID and is recognisable."""
    return f"<e2erun.{run_uid}@{names.GROUP}>"


def build_subject(run: Run, *, cluster: str) -> str:
    ref, summary, phase = run.spec.release, run.status.summary, run.status.phase
    head = f"[helm-e2e] {ref.name} r{ref.revision} in {cluster or ref.namespace}"
    if run.spec.request is not None:
        head += f" ({describe_request(run)})"
    if phase in _SUBJECT_LABELS:
        target = rolled_back_to(run)
        tail = f", rolled back to r{target}" if target else ""
        new = run.status.regression.newly_failing if run.status.regression else []
        tail = (f" ({regressions.count_label(new)} new)" if new else "") + tail
        return f"{head}: {_SUBJECT_LABELS[phase]} {summary.passed}/{summary.total}{tail}"
    return f"{head}: {phase.value.upper()}"


def describe_request(run: Run) -> str:
    """Why an already tested revision ran again: "" for the revision's own run."""
    request = run.spec.request
    if request is None:
        return ""
    if request.trigger == RequestTrigger.SCHEDULE:
        return f"scheduled check, suite {request.suite}" if request.suite else "scheduled check"
    return f"re-run, attempt {run.spec.attempt or 1}"


def rolled_back_to(run: Run) -> int | None:
    """The revision this run rolled its release back to, if it did (core/outcomes/rollback.py)."""
    cond = next((c for c in run.status.conditions if c.type == names.COND_ROLLED_BACK), None)
    record = run.status.rollback
    return record.target if cond is not None and cond.status == "True" and record is not None else None


def describe_rollback(run: Run) -> str:
    """What happened about a rollback, one line ("" when the run did not ask for one); how to roll back a
    failed Argo CD sync (the operator never does: Argo owns sync)."""
    cond = next((c for c in run.status.conditions if c.type == names.COND_ROLLED_BACK), None)
    if cond is not None:
        return " ".join(cond.message.split())
    managed, ref = run.spec.release.managed_by, run.spec.release
    if (
        managed
        and managed.kind == names.MANAGED_BY_ARGOCD
        and run.status.phase in (RunPhase.FAILED, RunPhase.ERROR)
    ):
        return argocd.describe_argocd_rollback(managed, ref.revision)
    return ""


def decide_recipients(
    run: Run, *, mail_to: Sequence[str], allowed_domains: frozenset[str] | None = None
) -> list[str]:
    """Operator default recipients, then the run's; de-duplicated case-insensitively, order kept. The
    run's own are checked again against `allowed_domains` (None: unchecked) when the mail goes out: the
    plan checked them, but the run is not the plan."""
    seen: set[str] = set()
    recipients: list[str] = []
    own = [
        a
        for a in run.spec.report.to
        if allowed_domains is None or check_recipients([a], allowed_domains=allowed_domains) is None
    ]
    for address in (a.strip() for a in [*mail_to, *own]):
        if address and address.lower() not in seen:
            seen.add(address.lower())
            recipients.append(address)
    return recipients


@functools.cache
def _env() -> jinja2.Environment:
    import jinja2  # the report's templates are loaded when a report is rendered, not at the start

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("helm_e2e", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["clean_log"] = clean_log
    env.filters["filesize"] = filesize
    env.filters["count_label"] = regressions.count_label
    return env


def filesize(size: int) -> str:
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _artifact_context(run: Run, attached: Sequence[Attachment]) -> dict[str, Any]:
    """The attached files, the other stored ones (with the command that fetches them), refusals."""
    names_attached = {(a.test, a.file.name) for a in attached}
    listed = [
        Attachment(t.name, f)
        for t in run.status.tests
        for f in t.artifacts
        if (t.name, f.name) not in names_attached
    ]
    notes = [(t.name, t.artifacts_message) for t in run.status.tests if t.artifacts_message]
    return {"artifacts_attached": list(attached), "artifacts_listed": listed, "artifact_notes": notes}


def logged_tests(run: Run) -> list[TestResult]:
    """The tests whose last log lines the report shows: every one that did not pass, and those that passed
    whose chart hook asks for its output on success (`helm.sh/hook-output-log-policy: hook-succeeded`)."""
    wanted = {t.name for t in run.spec.tests if t.log_on_success}
    return [
        t
        for t in run.status.tests
        if t.phase in (TestPhase.FAILED, TestPhase.ERROR)
        or (t.name in wanted and t.phase == TestPhase.SUCCEEDED)
    ]


def _context(run: Run, *, cluster: str, subject: str, history: Sequence[Run] = ()) -> dict[str, Any]:
    status = run.status
    took = (
        histories.format_duration((status.completed_at - status.started_at).total_seconds(), gap=" ")
        if status.started_at and status.completed_at
        else "-"
    )
    return {
        "run": run,
        "ref": run.spec.release,
        "status": status,
        "failed": [t for t in status.tests if t.phase in (TestPhase.FAILED, TestPhase.ERROR)],
        "logged": logged_tests(run),
        "cluster": cluster or run.spec.release.namespace,
        "duration": took,
        "colors": PHASE_COLORS,
        "subject": subject,
        "request": describe_request(run),
        "rollback": describe_rollback(run),
        "started": status.started_at.strftime("%Y-%m-%d %H:%M:%S UTC") if status.started_at else "-",
        **histories.build_context(run, history, colors=PHASE_COLORS),  # the history strip
    }


def render_report(
    run: Run, *, cluster: str, attached: Sequence[Attachment] = (), history: Sequence[Run] = ()
) -> Report:
    """`history`: the release's runs (E2ERuns as listed), for the history strip; this run is added."""
    subject = build_subject(run, cluster=cluster)
    context = _context(run, cluster=cluster, subject=subject, history=history) | _artifact_context(
        run, attached
    )
    return Report(
        subject=subject,
        text=_env().get_template("report.txt").render(context),
        html=_env().get_template("report.html").render(context),
        message_id=build_message_id(run.uid or f"{run.namespace}.{run.name}"),
        date=run.status.completed_at or run.status.started_at or run.created_at,
    )


def build_email(
    report: Report,
    *,
    sender: str,
    recipients: Sequence[str],
    attachments: Sequence[tuple[str, bytes]] = (),
) -> EmailMessage:
    """multipart/alternative, text first and HTML second (clients show the last part they can render).

    The subject is one line whatever it holds; a sender or recipient that cannot be a header (CR/LF, a
    malformed address) is a permanent MailError whose message names the header, not its value."""
    when = report.date or datetime.now(UTC)  # the clock only when the run has no timestamps at all
    message = EmailMessage()
    for header, value in (("From", sender), ("To", ", ".join(recipients))):
        try:
            message[header] = value
        except (ValueError, TypeError, IndexError, MessageError) as e:
            raise MailError(f"report e-mail: the {header} header is malformed", permanent=True) from e
    message["Subject"] = " ".join(report.subject.split())  # no CR/LF: one header line, no injection
    message["Date"] = format_datetime(when if when.tzinfo else when.replace(tzinfo=UTC))
    message["Message-ID"] = report.message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(report.text)
    message.add_alternative(report.html, subtype="html")
    for filename, data in attachments:  # after the alternatives: multipart/mixed around them
        maintype, subtype = _mime_type(filename)
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message


def _mime_type(filename: str) -> tuple[str, str]:
    """Never trust a test's file as anything it could run in a mail client: text, images, or bytes."""
    guessed, _ = mimetypes.guess_type(filename)
    if guessed in _SAFE_TYPES:
        major, _, minor = guessed.partition("/")
        return major, minor
    return "application", "octet-stream"
