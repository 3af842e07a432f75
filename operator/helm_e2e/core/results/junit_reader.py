"""Reading a test's junit.xml (pure): one case per pytest test, with its node id, outcome and message.

The document comes from a test pod, so it is hostile. It is parsed with the stdlib's expat directly,
not through a library: a DOCTYPE is refused when expat reports it, before any declaration in it is
processed (so no entity expansion, internal or external, can happen), parameter entities are never
parsed, and size, depth, element and case counts are bounded. That is what defusedxml's `forbid_dtd`
does, without adding a dependency to the operator image for one document type. Anything wrong is a
`JunitInvalid` (a ValueError) that names the problem, never a crash.

Node ids: pytest writes `classname="tests.test_api.TestLogin"`, `name="test_ok[a]"` and, in the xunit1
family the helm-e2e plugin selects, `file="tests/test_api.py"`; together they give back
`tests/test_api.py::TestLogin::test_ok[a]`. Without `file`, the id is `classname::name`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NoReturn
from xml.parsers import expat

from helm_e2e.core.model.run_status import PytestFailure
from helm_e2e.errors import JunitInvalid

JUNIT_ARTIFACT = "junit.xml"  # what the helm-e2e pytest plugin writes in the artifacts directory
MAX_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 32
MAX_ELEMENTS = 500_000
MAX_CASES = 5000  # cases kept; further ones are only counted
MAX_ID_BYTES = 500
MAX_MESSAGE_BYTES = 500
MAX_DETAIL_CHARS = 4096  # of a failure's text (the traceback), the start kept
_ROOTS = ("testsuites", "testsuite")


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"


_CHILD_OUTCOMES = {"failure": Outcome.FAILED, "error": Outcome.ERROR, "skipped": Outcome.SKIPPED}


@dataclass(frozen=True)
class JunitCase:
    id: str  # the pytest node id, e.g. `tests/test_api.py::test_token`
    outcome: Outcome
    message: str = ""  # one line, at most MAX_MESSAGE_BYTES
    detail: str = ""  # the failure's text (traceback), at most MAX_DETAIL_CHARS
    time: float | None = None


@dataclass(frozen=True)
class JunitReport:
    cases: list[JunitCase]
    total: int  # cases in the document, kept or not

    @property
    def truncated(self) -> bool:
        return self.total > len(self.cases)


def cut_bytes(text: str, limit: int) -> str:
    """At most `limit` UTF-8 bytes, cut on a character boundary, "..." marking a cut."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    return data[: max(limit - 3, 0)].decode("utf-8", "ignore") + "..."


def one_line(text: str, limit: int = MAX_MESSAGE_BYTES) -> str:
    return cut_bytes(" ".join(text.split()), limit)


def node_id(*, classname: str, name: str, file: str) -> str:
    """The pytest node id back from pytest's junitxml attributes (see the module docstring)."""
    if file:
        module = file.removesuffix(".py").replace("/", ".")
        classes = classname[len(module) + 1 :].split(".") if classname.startswith(module + ".") else []
        node = "::".join([file, *[c for c in classes if c], name])
    else:
        node = f"{classname}::{name}" if classname else name
    return cut_bytes(node, MAX_ID_BYTES)


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


@dataclass
class _Open:
    """The testcase being read."""

    attrs: dict[str, str]
    outcome: Outcome = Outcome.PASSED
    message: str = ""
    text: list[str] = field(default_factory=list)
    text_chars: int = 0
    in_outcome: bool = False  # inside the <failure>/<error>/<skipped> that decided the outcome


class _Reader:
    def __init__(self, *, max_cases: int, outcomes: frozenset[Outcome]) -> None:
        self.max_cases = max_cases
        self.outcomes = outcomes
        self.cases: list[JunitCase] = []
        self.total = 0
        self.depth = 0
        self.elements = 0
        self.case: _Open | None = None
        self.case_depth = 0

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        self.depth += 1
        self.elements += 1
        if self.depth == 1 and tag not in _ROOTS:
            raise JunitInvalid(f"not a JUnit document: the root element is <{tag[:40]}>")
        if self.depth > MAX_DEPTH or self.elements > MAX_ELEMENTS:
            raise JunitInvalid(
                f"JUnit document too complex (over {MAX_DEPTH} deep or {MAX_ELEMENTS} elements)"
            )
        if tag == "testcase" and self.case is None:
            self.case, self.case_depth = _Open(attrs=attrs), self.depth
        elif self.case is not None and self.depth == self.case_depth + 1 and tag in _CHILD_OUTCOMES:
            outcome = _CHILD_OUTCOMES[tag]
            if self.case.outcome in (Outcome.PASSED, Outcome.SKIPPED) and outcome != self.case.outcome:
                self.case.outcome, self.case.message = outcome, attrs.get("message", "")
                self.case.text, self.case.text_chars, self.case.in_outcome = [], 0, True

    def end(self, tag: str) -> None:
        case = self.case
        if case is not None and self.depth == self.case_depth + 1:
            case.in_outcome = False
        if case is not None and self.depth == self.case_depth:
            self.total += 1
            if len(self.cases) < self.max_cases and case.outcome in self.outcomes:
                self.cases.append(self._close(case))
            self.case = None
        self.depth -= 1

    def data(self, text: str) -> None:
        case = self.case
        if case is not None and case.in_outcome and case.text_chars < MAX_DETAIL_CHARS:
            piece = text[: MAX_DETAIL_CHARS - case.text_chars]
            case.text.append(piece)
            case.text_chars += len(piece)

    @staticmethod
    def _close(case: _Open) -> JunitCase:
        get = case.attrs.get
        detail = "".join(case.text)
        message = case.message or next((line for line in detail.splitlines() if line.strip()), "")
        return JunitCase(
            id=node_id(classname=get("classname", ""), name=get("name", ""), file=get("file", "")),
            outcome=case.outcome,
            message=one_line(message),
            detail=detail,
            time=_seconds(get("time")),
        )


def _refuse_dtd(*_: object) -> NoReturn:
    raise JunitInvalid("JUnit document declares a DTD or entities: refused")


def parse_junit(
    data: bytes, *, max_cases: int = MAX_CASES, outcomes: frozenset[Outcome] = frozenset(Outcome)
) -> JunitReport:
    """The testcases of a JUnit XML document (pytest's or another runner's) with one of `outcomes`, the
    first `max_cases` of them (`total` counts every testcase); JunitInvalid for anything else."""
    if len(data) > MAX_BYTES:
        raise JunitInvalid(f"JUnit document is {len(data)} bytes, over the {MAX_BYTES}-byte limit")
    reader = _Reader(max_cases=max_cases, outcomes=outcomes)
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.UnparsedEntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.data
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
    except JunitInvalid:
        raise
    except expat.ExpatError as e:
        raise JunitInvalid(f"JUnit document is not well-formed XML: {expat.ErrorString(e.code)}") from e
    except (LookupError, ValueError) as e:  # an encoding expat cannot use
        raise JunitInvalid(f"JUnit document cannot be decoded: {type(e).__name__}") from e
    return JunitReport(cases=reader.cases, total=reader.total)


def failures_from_junit(data: bytes, *, limit: int = 50) -> list[PytestFailure]:
    """The failing and erroring tests of a junit.xml, first `limit` of them, ids unique, messages cut."""
    failures: list[PytestFailure] = []
    seen: set[str] = set()
    failing = frozenset((Outcome.FAILED, Outcome.ERROR))
    for case in parse_junit(data, max_cases=2 * limit, outcomes=failing).cases:
        if len(failures) >= limit:
            break
        if case.id not in seen:
            seen.add(case.id)
            failures.append(PytestFailure(id=case.id, message=case.message))
    return failures
