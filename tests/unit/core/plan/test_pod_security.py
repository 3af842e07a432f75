"""Pod Security Standards checks on pod specs: one row per control of the published table, plus the
operator's own rules (no nodeName, ServiceAccounts only from the allow-list)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from helm_e2e.core.plan.pod_security import (
    PodSecurityLevel,
    Violation,
    check_pod_spec,
    check_service_account,
    describe,
    token_allowed,
)

BASELINE, RESTRICTED, PRIVILEGED = (
    PodSecurityLevel.BASELINE,
    PodSecurityLevel.RESTRICTED,
    PodSecurityLevel.PRIVILEGED,
)
C0 = "spec.containers[0]"
SC = f"{C0}.securityContext"
PLAIN: dict[str, Any] = {"containers": [{"name": "t", "image": "busybox"}]}
HARDENED: dict[str, Any] = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "t",
            "image": "busybox",
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        }
    ],
    "volumes": [{"name": "v", "emptyDir": {}}, {"name": "s", "secret": {"secretName": "x"}}],
}


def with_(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `base` with the dotted path (list indexes as numbers) set to value."""
    spec = copy.deepcopy(base)
    node: Any = spec
    *parents, leaf = [int(p) if p.isdigit() else p for p in path.split(".")]
    for part in parents:
        node = node[part] if isinstance(part, int) else node.setdefault(part, {})
    node[leaf] = value
    return spec


def paths(spec: dict[str, Any], level: PodSecurityLevel) -> list[str]:
    return [v.path for v in check_pod_spec(spec, level=level)]


BASELINE_ROWS = [
    ("hostNetwork", True, ["spec.hostNetwork"]),
    ("hostPID", True, ["spec.hostPID"]),
    ("hostIPC", True, ["spec.hostIPC"]),
    ("securityContext.windowsOptions.hostProcess", True, ["spec.securityContext.windowsOptions.hostProcess"]),
    ("containers.0.securityContext.privileged", True, [f"{SC}.privileged"]),
    ("containers.0.securityContext.capabilities.add", ["SYS_ADMIN"], [f"{SC}.capabilities.add"]),
    ("volumes", [{"name": "h", "hostPath": {"path": "/"}}], ["spec.volumes[0].hostPath"]),
    ("containers.0.ports", [{"containerPort": 80, "hostPort": 80}], [f"{C0}.ports[0].hostPort"]),
    (
        "containers.0.readinessProbe.httpGet",
        {"port": 80, "host": "10.0.0.1"},
        [f"{C0}.readinessProbe.httpGet.host"],
    ),
    (
        "containers.0.lifecycle.preStop.tcpSocket",
        {"port": 1, "host": "x"},
        [f"{C0}.lifecycle.preStop.tcpSocket.host"],
    ),
    ("securityContext.appArmorProfile.type", "Unconfined", ["spec.securityContext.appArmorProfile.type"]),
    ("containers.0.securityContext.seLinuxOptions.type", "spc_t", [f"{SC}.seLinuxOptions.type"]),
    ("containers.0.securityContext.seLinuxOptions.user", "root", [f"{SC}.seLinuxOptions.user"]),
    ("containers.0.securityContext.procMount", "Unmasked", [f"{SC}.procMount"]),
    ("securityContext.seccompProfile.type", "Unconfined", ["spec.securityContext.seccompProfile.type"]),
    (
        "securityContext.sysctls",
        [{"name": "kernel.msgmax", "value": "1"}],
        ["spec.securityContext.sysctls[0].name"],
    ),
]
BASELINE_ALLOWED = [
    ("hostNetwork", False),
    ("containers.0.securityContext.capabilities.add", ["NET_BIND_SERVICE", "CHOWN"]),
    ("containers.0.ports", [{"containerPort": 80, "hostPort": 0}]),
    ("securityContext.seccompProfile.type", "RuntimeDefault"),
    ("containers.0.securityContext.seLinuxOptions.type", "container_init_t"),
    ("securityContext.sysctls", [{"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"}]),
    ("containers.0.securityContext.procMount", "Default"),
    ("nodeSelector", {"disk": "ssd"}),
    ("tolerations", [{"operator": "Exists"}]),
]


@pytest.mark.parametrize(("path", "value", "expected"), BASELINE_ROWS)
def test_baseline_refuses_each_control_by_its_field_path(path: str, value: Any, expected: list[str]) -> None:
    spec = with_(PLAIN, path, value)
    assert paths(spec, BASELINE) == expected
    assert paths(spec, PRIVILEGED) == []


@pytest.mark.parametrize(("path", "value"), BASELINE_ALLOWED)
def test_baseline_allows_what_the_standard_allows(path: str, value: Any) -> None:
    assert paths(with_(PLAIN, path, value), BASELINE) == []


def test_a_plain_pod_meets_baseline_but_not_restricted() -> None:
    assert paths(PLAIN, BASELINE) == []
    assert paths(PLAIN, RESTRICTED) == [
        f"{SC}.allowPrivilegeEscalation",
        f"{SC}.runAsNonRoot",
        f"{SC}.seccompProfile.type",
        f"{SC}.capabilities.drop",
    ]


def test_a_hardened_pod_meets_restricted() -> None:
    assert paths(HARDENED, RESTRICTED) == []


RESTRICTED_ROWS = [
    ("volumes", [{"name": "n", "nfs": {"server": "s", "path": "/"}}], ["spec.volumes[0]"]),
    ("securityContext.runAsNonRoot", False, ["spec.securityContext.runAsNonRoot", f"{SC}.runAsNonRoot"]),
    ("securityContext.runAsUser", 0, ["spec.securityContext.runAsUser"]),
    ("containers.0.securityContext.runAsUser", 0, [f"{SC}.runAsUser"]),
    ("containers.0.securityContext.allowPrivilegeEscalation", True, [f"{SC}.allowPrivilegeEscalation"]),
    ("containers.0.securityContext.capabilities", {"drop": ["NET_RAW"]}, [f"{SC}.capabilities.drop"]),
    (
        "containers.0.securityContext.capabilities",
        {"drop": ["ALL"], "add": ["CHOWN"]},
        [f"{SC}.capabilities.add"],
    ),
    ("securityContext.seccompProfile", {}, [f"{SC}.seccompProfile.type"]),
]


@pytest.mark.parametrize(("path", "value", "expected"), RESTRICTED_ROWS)
def test_restricted_refuses_each_control_by_its_field_path(
    path: str, value: Any, expected: list[str]
) -> None:
    assert paths(with_(HARDENED, path, value), RESTRICTED) == expected


def test_restricted_accepts_container_level_settings_instead_of_pod_level_ones() -> None:
    spec = with_(HARDENED, "securityContext", {})
    spec = with_(spec, "containers.0.securityContext.runAsNonRoot", True)
    spec = with_(spec, "containers.0.securityContext.seccompProfile", {"type": "Localhost"})
    assert paths(spec, RESTRICTED) == []


def test_init_and_ephemeral_containers_are_checked_too() -> None:
    spec = with_(PLAIN, "initContainers", [{"name": "i", "securityContext": {"privileged": True}}])
    spec["ephemeralContainers"] = [{"name": "e", "securityContext": {"privileged": True}}]
    assert paths(spec, BASELINE) == [
        "spec.initContainers[0].securityContext.privileged",
        "spec.ephemeralContainers[0].securityContext.privileged",
    ]


def test_apparmor_annotations_are_checked_when_given() -> None:
    bad = {"container.apparmor.security.beta.kubernetes.io/t": "unconfined"}
    good = {"container.apparmor.security.beta.kubernetes.io/t": "localhost/prof"}
    assert [v.path for v in check_pod_spec(PLAIN, level=BASELINE, annotations=bad)] == [
        "metadata.annotations[container.apparmor.security.beta.kubernetes.io/t]"
    ]
    assert check_pod_spec(PLAIN, level=BASELINE, annotations=good) == []


def test_node_name_is_refused_at_every_level_but_node_selectors_are_not() -> None:
    for level in PodSecurityLevel:
        assert paths(with_(HARDENED, "nodeName", "node-1"), level) == ["spec.nodeName"]


def test_violations_never_quote_the_offending_value() -> None:
    secret = "hunter2-from-values"
    spec = with_(PLAIN, "containers.0.securityContext.capabilities.add", [secret])
    spec = with_(spec, "securityContext.sysctls", [{"name": secret}])
    spec = with_(spec, "nodeName", secret)
    text = describe(check_pod_spec(spec, level=RESTRICTED), limit=100)
    assert secret not in text


def test_malformed_specs_are_checked_without_crashing() -> None:
    for spec in ({"containers": "x"}, {"containers": [None, 3]}, {"securityContext": []}, {"volumes": [1]}):
        check_pod_spec(spec, level=RESTRICTED)


def test_a_named_service_account_must_be_allowed() -> None:
    spec = {**PLAIN, "serviceAccountName": "deployer"}
    assert [v.path for v in check_service_account(spec, allowed_accounts=set())] == [
        "spec.serviceAccountName"
    ]
    assert check_service_account(spec, allowed_accounts={"deployer"}) == []
    assert check_service_account({**PLAIN, "serviceAccount": "deployer"}, allowed_accounts=set()) != []
    assert check_service_account(PLAIN, allowed_accounts=set()) == []


def test_a_token_is_allowed_only_with_a_named_allowed_account() -> None:
    assert token_allowed({**PLAIN, "serviceAccountName": "e2e"}, allowed_accounts={"e2e"}) is True
    assert token_allowed({**PLAIN, "serviceAccountName": "other"}, allowed_accounts={"e2e"}) is False
    assert token_allowed(PLAIN, allowed_accounts={"e2e"}) is False


def projected(*sources: dict[str, Any]) -> dict[str, Any]:
    volume = {"name": "token", "projected": {"sources": list(sources)}}
    return {**PLAIN, "volumes": [{"name": "scratch", "emptyDir": {}}, volume]}


TOKEN = {"serviceAccountToken": {"path": "token", "audience": "vault", "expirationSeconds": 3600}}
CONFIG = {"configMap": {"name": "settings"}}


def test_a_projected_token_is_refused_unless_the_pod_may_have_a_token_at_all() -> None:
    spec = projected(CONFIG, TOKEN)
    refused = check_service_account(spec, allowed_accounts={"e2e"})
    assert [v.path for v in refused] == ["spec.volumes[1].projected.sources[1].serviceAccountToken"]
    assert "labelled helm-e2e.dev/test-account=true" in refused[0].problem
    named_other = check_service_account({**spec, "serviceAccountName": "other"}, allowed_accounts={"e2e"})
    assert [v.path.split(".")[-1] for v in named_other] == ["serviceAccountName", "serviceAccountToken"]
    assert check_service_account({**spec, "serviceAccountName": "e2e"}, allowed_accounts={"e2e"}) == []


def test_projected_volumes_without_a_token_and_malformed_ones_pass() -> None:
    assert (
        check_service_account(projected(CONFIG, {"downwardAPI": {"items": []}}), allowed_accounts=set()) == []
    )
    for odd in ({"volumes": [{"projected": None}]}, {"volumes": [{"projected": {"sources": "x"}}]},
                {"volumes": [{"projected": {"sources": [None, 3]}}]}):  # fmt: skip
        assert check_service_account({**PLAIN, **odd}, allowed_accounts=set()) == []


def test_describe_is_one_line_with_a_count_of_the_rest() -> None:
    violations = [Violation(f"spec.f{i}", "bad") for i in range(5)]
    assert describe(violations) == "spec.f0: bad; spec.f1: bad; spec.f2: bad (and 2 more)"
    assert describe([]) == ""
