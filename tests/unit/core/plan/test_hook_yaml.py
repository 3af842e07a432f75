"""Bounded parsing of hook manifests: aliases, size, depth and non-JSON values are refused fast."""

from __future__ import annotations

import time

import pytest
from hook_fixtures import hook_set

from helm_e2e.core.plan.hook_yaml import HookManifestInvalid, parse_hook_manifest

BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_a_billion_laughs_manifest_is_refused_fast() -> None:
    assert len(BILLION_LAUGHS.encode()) < 1024
    started = time.monotonic()
    hooks = hook_set(BILLION_LAUGHS)
    assert time.monotonic() - started < 0.5
    assert "aliases" in hooks.refused[0]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("a: " + "x" * 1_048_577, "larger than"),
        ("[" * 100_000, "nested too deeply"),
        ("a: !!binary aGVsbG8=\n", "no JSON form"),
        ("a: .inf\n", "not finite"),
        ("{~: 1}\n", "not a scalar"),
        ("{[1]: 2}\n", "not valid YAML"),
        ("a: 1\n---\nb: 2\n", "single document"),
        ("- 1\n", "not a Kubernetes object"),
    ],
)
def test_unusable_yaml_is_refused_with_a_reason_that_quotes_nothing(text: str, why: str) -> None:
    with pytest.raises(HookManifestInvalid, match=why):
        parse_hook_manifest(text)


def test_timestamps_stay_strings_and_scalar_keys_become_strings_like_sigs_k8s_io_yaml() -> None:
    assert parse_hook_manifest("data:\n  when: 2020-01-02\n  80: http\n  true: yes\n") == {
        "data": {"when": "2020-01-02", "80": "http", "true": True}
    }
