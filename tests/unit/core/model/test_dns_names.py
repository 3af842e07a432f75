"""Run, pod and test names: DNS-1123 labels, deterministic, distinct when truncated."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from helm_e2e.core.model.dns_names import build_pod_name, build_run_name, label_value, sanitize_test_name

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
HASHED = re.compile(r"-[0-9a-f]{8}$")


def assert_dns_label(name: str) -> None:
    assert len(name) <= 63, name
    assert DNS_LABEL.match(name), name


def test_short_valid_names_are_kept_as_they_are() -> None:
    assert build_run_name("web", 3) == "web-3"
    assert build_pod_name("web-3", "api-smoke") == "web-3-api-smoke"
    assert sanitize_test_name("web-smoke") == "web-smoke"


def test_a_long_pod_name_is_truncated_to_63_with_a_short_hash() -> None:
    name = build_pod_name("r" * 60 + "-7", "api-smoke")
    assert len(name) == 63
    assert HASHED.search(name)
    assert name.startswith("r" * 54)


def test_a_release_name_with_dots_gets_a_hash_so_it_never_meets_the_dashed_one() -> None:
    dotted, dashed = build_run_name("web.v1", 3), build_run_name("web-v1", 3)
    assert dashed == "web-v1-3"
    assert dotted != dashed
    assert_dns_label(dotted)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Web.Smoke", "web-smoke"), ("--a__b--", "a-b"), ("", "x"), ("!!!", "x"), ("ÄPI test", "pi-test")],
)
def test_test_names_are_sanitized_readably(raw: str, expected: str) -> None:
    assert sanitize_test_name(raw) == expected


def test_a_long_test_name_is_truncated_with_a_hash() -> None:
    name = sanitize_test_name("t" * 100)
    assert_dns_label(name)
    assert HASHED.search(name)


@pytest.mark.parametrize("value", ["web-3", "a" * 63, "a" * 64, "-._x._-", "v1.2.3+build", "", "___"])
def test_label_values_are_always_valid(value: str) -> None:
    out = label_value(value)
    assert len(out) <= 63
    assert LABEL_VALUE.match(out), out


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=120), st.integers(min_value=1, max_value=10**6), st.text(max_size=80))
def test_run_and_pod_names_are_always_deterministic_dns_labels(
    release_name: str, revision: int, test_name: str
) -> None:
    run = build_run_name(release_name, revision)
    pod = build_pod_name(run, test_name)
    assert_dns_label(run)
    assert_dns_label(pod)
    assert build_run_name(release_name, revision) == run
    assert build_pod_name(run, test_name) == pod


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_sanitized_test_names_and_label_values_are_always_valid(text: str) -> None:
    assert_dns_label(sanitize_test_name(text))
    assert sanitize_test_name(text) == sanitize_test_name(text)
    assert LABEL_VALUE.match(label_value(text))
    assert len(label_value(text)) <= 63


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="abc-", min_size=63, max_size=80).filter(lambda s: s[0] != "-" and s[-1] != "-"),
    st.text(alphabet="abc", min_size=1, max_size=8),
    st.text(alphabet="abc", min_size=1, max_size=8),
)
def test_long_names_that_share_a_truncated_prefix_still_differ(prefix: str, a: str, b: str) -> None:
    assume(a != b)
    assert build_pod_name(prefix, a) != build_pod_name(prefix, b)
    assert build_run_name(prefix + a, 1) != build_run_name(prefix + b, 1)
    assert sanitize_test_name(prefix + a) != sanitize_test_name(prefix + b)
    assert label_value(prefix + a) != label_value(prefix + b)
