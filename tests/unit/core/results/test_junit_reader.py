"""Reading a test's junit.xml: pytest node ids, outcomes, messages; hostile documents refused cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helm_e2e.core.results import junit_reader as junitxml
from helm_e2e.core.results.junit_reader import Outcome, failures_from_junit, node_id, parse_junit
from helm_e2e.errors import JunitInvalid

# what pytest 9 writes with junit_family=xunit1 (abridged): a class, a parameter, setup error, skip, xfail
PYTEST_XML = b"""<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite
 name="pytest" errors="1" failures="2" skipped="2" tests="6" time="0.5">
<testcase classname="tests.test_api" name="test_ok" file="tests/test_api.py" line="3" time="0.010" />
<testcase classname="tests.test_api.TestLogin" name="test_token[a::b.c]" file="tests/test_api.py" line="9"
 time="0.200"><failure message="AssertionError: assert 401 == 200&#10;  +  where 401 = status">self = x

&gt;   assert status == 200
E   AssertionError: assert 401 == 200</failure></testcase>
<testcase classname="tests.test_api" name="test_setup" file="tests/test_api.py" line="20" time="0.001">
<error message="failed on setup with &quot;RuntimeError: db&quot;">RuntimeError: db</error></testcase>
<testcase classname="tests.test_api" name="test_later" file="tests/test_api.py" line="25" time="0">
<skipped type="pytest.skip" message="later">tests/test_api.py:25: later</skipped></testcase>
<testcase classname="tests.test_api" name="test_xfail" file="tests/test_api.py" line="30" time="0.001">
<skipped type="pytest.xfail" message="" /></testcase>
<testcase classname="tests.sub.test_deep" name="test_nomsg" file="tests/sub/test_deep.py" line="1" time="x">
<failure>

first line of the text
second</failure></testcase>
</testsuite></testsuites>"""


def test_each_testcase_becomes_its_pytest_node_id_outcome_and_time() -> None:
    report = parse_junit(PYTEST_XML)
    assert [(c.id, c.outcome, c.time) for c in report.cases] == [
        ("tests/test_api.py::test_ok", Outcome.PASSED, 0.01),
        ("tests/test_api.py::TestLogin::test_token[a::b.c]", Outcome.FAILED, 0.2),
        ("tests/test_api.py::test_setup", Outcome.ERROR, 0.001),
        ("tests/test_api.py::test_later", Outcome.SKIPPED, 0.0),
        ("tests/test_api.py::test_xfail", Outcome.SKIPPED, 0.001),
        ("tests/sub/test_deep.py::test_nomsg", Outcome.FAILED, None),
    ]
    assert (report.total, report.truncated) == (6, False)


def test_messages_are_one_line_and_the_text_is_the_detail() -> None:
    cases = {c.id.split("::")[1]: c for c in parse_junit(PYTEST_XML).cases}
    token = cases["TestLogin"]
    assert token.message == "AssertionError: assert 401 == 200 + where 401 = status"
    assert token.detail.endswith("E   AssertionError: assert 401 == 200")
    assert cases["test_nomsg"].message == "first line of the text"  # no message attribute
    assert cases["test_later"].message == "later"


def test_failures_are_the_failed_and_errored_tests_with_their_messages() -> None:
    assert [(f.id, f.message) for f in failures_from_junit(PYTEST_XML)] == [
        (
            "tests/test_api.py::TestLogin::test_token[a::b.c]",
            "AssertionError: assert 401 == 200 + where 401 = status",
        ),
        ("tests/test_api.py::test_setup", 'failed on setup with "RuntimeError: db"'),
        ("tests/sub/test_deep.py::test_nomsg", "first line of the text"),
    ]


def many(n: int, *, outcome: str = "<failure message='m'/>", name: str = "t") -> bytes:
    cases = "".join(f"<testcase classname='c' name='{name}{i}'>{outcome}</testcase>" for i in range(n))
    return f"<testsuite>{cases}</testsuite>".encode()


def test_failures_are_bounded_and_unique() -> None:
    assert len(failures_from_junit(many(500))) == 50
    assert len(failures_from_junit(many(500), limit=3)) == 3
    twice = b"<testsuite>" + b"<testcase classname='c' name='t'><failure/></testcase>" * 2 + b"</testsuite>"
    assert [f.id for f in failures_from_junit(twice)] == ["c::t"]


def test_a_failure_after_many_passes_is_still_found() -> None:
    data = many(6000, outcome="")[: -len(b"</testsuite>")]
    data += b"<testcase classname='c' name='late'><error message='boom'/></testcase></testsuite>"
    assert [(f.id, f.message) for f in failures_from_junit(data)] == [("c::late", "boom")]
    report = parse_junit(data)
    assert (len(report.cases), report.total, report.truncated) == (junitxml.MAX_CASES, 6001, True)


def test_a_long_message_is_cut_to_500_bytes_on_a_character_boundary() -> None:
    data = f"<testsuite><testcase name='t'><failure message='{'é' * 2000}'/></testcase></testsuite>".encode()
    (failure,) = failures_from_junit(data)
    assert len(failure.message.encode()) <= 500
    assert failure.message.endswith("é...")


def test_the_plain_junit_of_other_runners_is_read_too() -> None:
    data = b"<testsuite name='go'><testcase classname='pkg' name='TestX'><failure>x_test.go:3</failure></testcase></testsuite>"
    assert [(f.id, f.message) for f in failures_from_junit(data)] == [("pkg::TestX", "x_test.go:3")]


def test_node_ids_keep_the_file_and_classes_and_fall_back_without_a_file() -> None:
    assert (
        node_id(classname="a.b.test_x.TestY", name="test_z", file="a/b/test_x.py")
        == "a/b/test_x.py::TestY::test_z"
    )
    assert node_id(classname="test_x", name="test_z", file="test_x.py") == "test_x.py::test_z"
    assert node_id(classname="other", name="test_z", file="t.py") == "t.py::test_z"
    assert node_id(classname="", name="tests.test_broken", file="") == "tests.test_broken"
    assert len(node_id(classname="c", name="x" * 5000, file="")) <= junitxml.MAX_ID_BYTES


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<testsuite><testcase name="&lol2;"/></testsuite>"""
EXTERNAL = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<testsuite><testcase name="t"><failure message="&e;"/></testcase></testsuite>"""


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (BILLION_LAUGHS, "DTD"),
        (EXTERNAL, "DTD"),
        (b'<!DOCTYPE testsuite SYSTEM "http://example.invalid/x.dtd"><testsuite/>', "DTD"),
        (b"", "not well-formed"),
        (b"not xml at all", "not well-formed"),
        (b"<testsuite><testcase>", "not well-formed"),
        (b"<html><body/></html>", "root element is <html>"),
        (b'<?xml version="1.0" encoding="x-no-such"?><testsuite/>', "JUnit document"),
        ("<testsuite>" * 40 + "</testsuite>" * 40, "too complex"),
        (b"<testsuite>" + b" " * (junitxml.MAX_BYTES) + b"</testsuite>", "byte limit"),
        (b"\xff\xfe\x00garbage", "JUnit document"),
    ],
)
def test_hostile_or_broken_documents_are_refused_with_a_reason(data: bytes | str, why: str) -> None:
    raw = data.encode() if isinstance(data, str) else data
    with pytest.raises(JunitInvalid, match=why):
        parse_junit(raw)
    with pytest.raises(ValueError, match=why):  # callers may catch the plain ValueError
        failures_from_junit(raw)


def test_a_utf16_document_with_its_declaration_is_read() -> None:
    data = '<?xml version="1.0" encoding="utf-16"?><testsuite><testcase name="é"/></testsuite>'.encode(
        "utf-16"
    )
    assert [c.id for c in parse_junit(data).cases] == ["é"]


def test_the_empty_suite_has_no_cases(tmp_path: Path) -> None:
    assert parse_junit(b"<testsuites/>").cases == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_parse_or_raise_junit_invalid(data: bytes) -> None:
    try:
        report = parse_junit(data)
    except JunitInvalid:
        return
    assert report.total >= len(report.cases)


XML_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)


@settings(max_examples=300, deadline=None)
@given(
    classname=XML_TEXT,
    name=XML_TEXT,
    message=XML_TEXT,
    body=XML_TEXT,
    child=st.sampled_from(["failure", "error", "skipped", "system-out"]),
    wrap=st.booleans(),
)
def test_hostile_attribute_and_text_values_give_bounded_cases_or_a_clean_error(
    classname: str, name: str, message: str, body: str, child: str, wrap: bool
) -> None:
    from xml.sax.saxutils import escape, quoteattr

    case = (
        f"<testcase classname={quoteattr(classname)} name={quoteattr(name)}>"
        f"<{child} message={quoteattr(message)}>{escape(body)}</{child}></testcase>"
    )
    doc = f"<testsuite>{case}</testsuite>"
    doc = f"<testsuites>{doc}</testsuites>" if wrap else doc
    try:
        failures = failures_from_junit(doc.encode())
    except JunitInvalid:
        return  # e.g. a character XML 1.0 forbids in the generated text
    assert len(failures) <= 1
    for failure in failures:
        assert len(failure.message.encode()) <= junitxml.MAX_MESSAGE_BYTES
        assert "\n" not in failure.message
        assert len(failure.id.encode()) <= junitxml.MAX_ID_BYTES
    assert bool(failures) == (child in ("failure", "error"))
