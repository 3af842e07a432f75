"""Settings come from HELM_E2E_* variables when built (never at import), are checked, and keep secrets out of logs."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from helm_e2e.settings import LogFormat, PodSecurityLevel, Settings, SmtpTls


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees only the HELM_E2E_* variables it sets itself."""
    for name in os.environ:
        if name.upper().startswith("HELM_E2E_"):
            monkeypatch.delenv(name)


def test_defaults_watch_the_whole_cluster_and_send_no_mail() -> None:
    settings = Settings()
    assert settings.watch_namespaces == []
    assert settings.mail_to == []
    assert settings.smtp_enabled is False
    assert settings.smtp_tls is SmtpTls.NONE
    assert settings.log_format is LogFormat.JSON
    assert (settings.history_limit, settings.pod_ttl_seconds, settings.run_chart_hooks) == (10, 3600, True)


def test_values_are_read_from_the_environment_when_settings_are_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = Settings()
    monkeypatch.setenv("HELM_E2E_HISTORY_LIMIT", "3")
    monkeypatch.setenv("HELM_E2E_RUN_CHART_HOOKS", "false")
    monkeypatch.setenv("HELM_E2E_RESYNC_SECONDS", "0.5")
    monkeypatch.setenv("HELM_E2E_SMTP_TLS", "starttls")
    monkeypatch.setenv("HELM_E2E_LOG_FORMAT", "console")
    after = Settings()
    assert before.history_limit == 10
    assert after.history_limit == 3
    assert after.run_chart_hooks is False
    assert after.resync_seconds == 0.5
    assert after.smtp_tls is SmtpTls.STARTTLS
    assert after.log_format is LogFormat.CONSOLE


def test_variables_without_the_prefix_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HISTORY_LIMIT", "3")
    monkeypatch.setenv("SMTP_HOST", "mail.example.com")
    settings = Settings()
    assert settings.history_limit == 10
    assert settings.smtp_host == ""


def test_unknown_prefixed_variables_do_not_stop_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELM_E2E_NO_SUCH_SETTING", "1")
    assert Settings().history_limit == 10


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("shop", ["shop"]),
        ("shop,prod", ["shop", "prod"]),
        (" shop , prod ,, staging ,", ["shop", "prod", "staging"]),
        ("", []),
        (" , ", []),
    ],
)
def test_watch_namespaces_is_a_comma_separated_list_without_blanks(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: list[str]
) -> None:
    monkeypatch.setenv("HELM_E2E_WATCH_NAMESPACES", raw)
    assert Settings().watch_namespaces == expected


def test_mail_to_is_a_comma_separated_list_of_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELM_E2E_MAIL_TO", "qa@example.com, Ops Team <ops@example.com>")
    assert Settings().mail_to == ["qa@example.com", "Ops Team <ops@example.com>"]


def test_lists_given_in_code_are_kept_as_they_are() -> None:
    settings = Settings(watch_namespaces=["a", "b"], mail_to=["x@example.com"])
    assert settings.watch_namespaces == ["a", "b"]
    assert settings.mail_to == ["x@example.com"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HELM_E2E_POD_TTL_SECONDS", "-1"),
        ("HELM_E2E_STARTUP_GRACE_SECONDS", "-5"),
        ("HELM_E2E_HISTORY_LIMIT", "0"),
        ("HELM_E2E_DEFAULT_TEST_TIMEOUT_SECONDS", "0"),
        ("HELM_E2E_RUN_DEADLINE_SECONDS", "-1800"),
        ("HELM_E2E_LOG_TAIL_BYTES", "65537"),
        ("HELM_E2E_LOG_TAIL_BYTES", "-1"),
        ("HELM_E2E_RESYNC_SECONDS", "0"),
        ("HELM_E2E_SMTP_TIMEOUT_SECONDS", "0"),
        ("HELM_E2E_SMTP_RETRY_BASE_SECONDS", "-1"),
        ("HELM_E2E_METRICS_PORT", "-1"),
        ("HELM_E2E_SMTP_TLS", "ssl"),
        ("HELM_E2E_LOG_FORMAT", "xml"),
        ("HELM_E2E_HISTORY_LIMIT", "ten"),
        ("HELM_E2E_RUN_CHART_HOOKS", "maybe"),
    ],
)
def test_out_of_range_or_malformed_values_are_refused_at_startup(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    field = variable.removeprefix("HELM_E2E_").lower()
    assert [error["loc"] for error in refused.value.errors()] == [(field,)]


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("HELM_E2E_POD_TTL_SECONDS", "0", "pod_ttl_seconds", 0),
        ("HELM_E2E_STARTUP_GRACE_SECONDS", "0", "startup_grace_seconds", 0),
        ("HELM_E2E_LOG_TAIL_BYTES", "65536", "log_tail_bytes", 65536),
        ("HELM_E2E_LOG_TAIL_BYTES", "0", "log_tail_bytes", 0),
        ("HELM_E2E_HISTORY_LIMIT", "1", "history_limit", 1),
        ("HELM_E2E_METRICS_PORT", "0", "metrics_port", 0),
    ],
)
def test_the_bounds_themselves_are_accepted(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str, expected: int
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(Settings(), field) == expected


def test_smtp_is_enabled_by_a_host_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(smtp_username="bot", smtp_password="pw").smtp_enabled is False
    monkeypatch.setenv("HELM_E2E_SMTP_HOST", "mail.example.com")
    assert Settings().smtp_enabled is True


def test_the_smtp_password_never_appears_in_repr_str_or_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELM_E2E_SMTP_HOST", "mail.example.com")
    monkeypatch.setenv("HELM_E2E_SMTP_PASSWORD", "hunter2-s3cret")
    settings = Settings()
    assert settings.smtp_password.get_secret_value() == "hunter2-s3cret"
    for shown in (repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())):
        assert "hunter2-s3cret" not in shown
    assert "mail.example.com" in repr(settings)  # the check above would pass on an empty repr too


def test_a_refused_setting_does_not_echo_the_smtp_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELM_E2E_SMTP_PASSWORD", "hunter2-s3cret")
    monkeypatch.setenv("HELM_E2E_SMTP_PORT", "not-a-port")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "smtp_port" in str(refused.value)
    assert "hunter2-s3cret" not in str(refused.value)


# --- the trust boundary's settings ---


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


@pytest.mark.parametrize(
    ("lease", "renew", "retry"),
    [(10, 10, 2), (10, 12, 2), (10, 2, 2)],  # renew deadline not below the lease; not above 1.2 x retry
)
def test_leader_election_timings_the_kubernetes_client_would_reject_are_refused(
    monkeypatch: pytest.MonkeyPatch, lease: int, renew: int, retry: int
) -> None:
    monkeypatch.setenv("HELM_E2E_LEADER_ELECTION", "true")
    monkeypatch.setenv("HELM_E2E_LEADER_ELECTION_NAMESPACE", "ops")
    monkeypatch.setenv("HELM_E2E_LEADER_ELECTION_LEASE_SECONDS", str(lease))
    monkeypatch.setenv("HELM_E2E_LEADER_ELECTION_RENEW_DEADLINE_SECONDS", str(renew))
    monkeypatch.setenv("HELM_E2E_LEADER_ELECTION_RETRY_PERIOD_SECONDS", str(retry))
    with pytest.raises(ValidationError, match="lease_seconds > renew_deadline_seconds"):
        Settings()


def test_leader_election_timings_are_only_checked_when_it_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELM_E2E_LEADER_ELECTION_RENEW_DEADLINE_SECONDS", "30")
    assert Settings().leader_election is False


def test_webhooks_are_a_list_of_target_names_and_their_secret_needs_a_namespace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HELM_E2E_WEBHOOKS", " ops, ,chat ")
    monkeypatch.setenv("HELM_E2E_WEBHOOKS_SECRET", "hooks")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "webhooks_namespace" in str(refused.value)
    monkeypatch.setenv("HELM_E2E_WEBHOOKS_NAMESPACE", "helm-e2e")
    settings = Settings()
    assert (settings.webhooks, settings.webhooks_secret) == (["ops", "chat"], "hooks")


def test_a_namespace_selector_and_namespace_names_are_refused_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HELM_E2E_NAMESPACE_SELECTOR", "helm-e2e.dev/shard=a")
    assert Settings().namespace_selector == "helm-e2e.dev/shard=a"
    monkeypatch.setenv("HELM_E2E_WATCH_NAMESPACES", "shop")
    with pytest.raises(ValidationError, match="not both"):
        Settings()
