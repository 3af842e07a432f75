"""The deploy report: subject, text and HTML bodies, recipients, Message-ID (pure).

The Run model holds no release values or secret data, so nothing of that kind can reach a report.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime

import jinja2

from .models import Run, RunPhase, TestPhase

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("helm_e2e", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
PHASE_COLORS = {
    "Succeeded": "#1a7f37",
    "Failed": "#cf222e",
    "Error": "#bc4c00",
    "Cancelled": "#57606a",
    "Superseded": "#57606a",
    "Running": "#0969da",
    "Pending": "#57606a",
}


@dataclass(frozen=True)
class Report:
    subject: str
    text: str
    html: str
    message_id: str


@dataclass(frozen=True)
class MailDecision:
    send: bool
    recipients: list[str]
    reason: str


def build_message_id(run_uid: str) -> str:
    """Deterministic: a repeated send after a crash carries the same Message-ID and is recognisable."""
    return f"<e2erun.{run_uid}@helm-e2e.dev>"


def build_subject(run: Run, *, cluster: str) -> str:
    ref, s, phase = run.spec.release, run.status.summary, run.status.phase
    where = cluster or ref.namespace
    head = f"[helm-e2e] {ref.name} r{ref.revision} in {where}"
    if phase in (RunPhase.SUCCEEDED, RunPhase.FAILED, RunPhase.ERROR):
        label = {RunPhase.SUCCEEDED: "PASSED", RunPhase.FAILED: "FAILED", RunPhase.ERROR: "ERROR"}[phase]
        return f"{head}: {label} {s.passed}/{s.total}"
    return f"{head}: {phase.value.upper()}"


def decide_recipients(run: Run, *, mail_to: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for address in [*mail_to, *run.spec.report.to]:
        if address and address.lower() not in seen:
            seen.add(address.lower())
            out.append(address)
    return out


def decide_mail(run: Run, *, mail_to: list[str], report_cancelled: bool) -> MailDecision:
    recipients = decide_recipients(run, mail_to=mail_to)
    phase = run.status.phase
    if not phase.is_final:
        return MailDecision(False, recipients, "NotFinished")
    if phase in (RunPhase.CANCELLED, RunPhase.SUPERSEDED) and not report_cancelled:
        return MailDecision(False, recipients, "NotReported")
    if phase == RunPhase.SUCCEEDED and run.spec.report.only_on_failure:
        return MailDecision(False, recipients, "OnlyOnFailure")
    if not recipients:
        return MailDecision(False, recipients, "NoRecipients")
    return MailDecision(True, recipients, "Send")


def _duration(run: Run) -> str:
    st = run.status
    if st.started_at and st.completed_at:
        return f"{(st.completed_at - st.started_at).total_seconds():.0f}s"
    return "-"


def render_report(run: Run, *, cluster: str) -> Report:
    failed = [t for t in run.status.tests if t.phase in (TestPhase.FAILED, TestPhase.ERROR)]
    context = {
        "run": run,
        "ref": run.spec.release,
        "status": run.status,
        "failed": failed,
        "cluster": cluster or run.spec.release.namespace,
        "duration": _duration(run),
        "colors": PHASE_COLORS,
        "subject": build_subject(run, cluster=cluster),
        "started": run.status.started_at.strftime("%Y-%m-%d %H:%M:%S UTC") if run.status.started_at else "-",
    }
    return Report(
        subject=context["subject"],  # type: ignore[arg-type]
        text=_ENV.get_template("report.txt").render(context),
        html=_ENV.get_template("report.html").render(context),
        message_id=build_message_id(run.uid or f"{run.namespace}.{run.name}"),
    )


def build_email(report: Report, *, sender: str, recipients: list[str], date: object = None) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = report.subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Message-ID"] = report.message_id
    message["Auto-Submitted"] = "auto-generated"
    if date is not None:
        message["Date"] = format_datetime(date)  # type: ignore[arg-type]
    message.set_content(report.text)
    message.add_alternative(report.html, subtype="html")
    return message
