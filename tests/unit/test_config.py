"""Settings at the trust boundary: pod security level, allowed mail domains, sandbox and API limits."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from helm_e2e.config import PodSecurityLevel, Settings


def test_defaults_are_baseline_pods_and_bounded_sandbox() -> None:
    settings = Settings()
    assert settings.pod_security == PodSecurityLevel.BASELINE
    assert (settings.sandbox_timeout_seconds, settings.sandbox_memory_mib, settings.api_timeout_seconds) == (
        10.0,
        256,
        30.0,
    )


def test_allowed_mail_domains_default_to_the_domains_of_mail_to(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELM_E2E_MAIL_TO", "ops@Example.com, dev@team.example.org")
    assert Settings().allowed_mail_domains == {"example.com", "team.example.org"}
    monkeypatch.setenv("HELM_E2E_MAIL_ALLOWED_DOMAINS", "corp.test, ,Other.Test")
    assert Settings().allowed_mail_domains == {"corp.test", "other.test"}


def test_without_mail_to_or_allowed_domains_no_suite_recipient_is_allowed() -> None:
    assert Settings().allowed_mail_domains == frozenset()


def test_an_unknown_pod_security_level_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELM_E2E_POD_SECURITY", "lenient")
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.setenv("HELM_E2E_POD_SECURITY", "restricted")
    assert Settings().pod_security == PodSecurityLevel.RESTRICTED
