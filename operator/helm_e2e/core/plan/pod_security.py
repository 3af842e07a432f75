"""Pod Security Standards on a PodSpec dict, and the operator's own pod rules (pure).

Mirrors https://kubernetes.io/docs/concepts/security/pod-security-standards/ (Kubernetes v1.34; the
reference implementation is Go's k8s.io/pod-security-admission/policy, no maintained Python one
exists). Linux pods only: the Windows relaxations of `restricted` are not modelled.
Beyond PSS, at every level: no `nodeName` (a test never pins itself to a node), a named
ServiceAccount must be one the namespace admin allowed for tests, and a projected service-account token
needs such an account too (else it would bypass `automountServiceAccountToken: false`).
Violations name the field path and the rule, never a value: template output may hold release values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Set
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from helm_e2e.core.model import names


class PodSecurityLevel(StrEnum):
    PRIVILEGED = "privileged"
    BASELINE = "baseline"
    RESTRICTED = "restricted"


@dataclass(frozen=True)
class Violation:
    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


BASELINE_CAPABILITIES = frozenset(
    {
        *("AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE"),
        *("SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"),
    }
)
RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
RESTRICTED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
PROFILE_TYPES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")


def _map(node: Any) -> Mapping[str, Any]:
    return node if isinstance(node, Mapping) else {}


def _list(node: Any) -> list[Any]:
    return node if isinstance(node, list) else []


def _containers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for key in CONTAINER_LISTS:
        for i, container in enumerate(_list(spec.get(key))):
            yield f"spec.{key}[{i}]", _map(container)


def _security_contexts(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The pod's securityContext, then each container's."""
    yield "spec.securityContext", _map(spec.get("securityContext"))
    for path, container in _containers(spec):
        yield f"{path}.securityContext", _map(container.get("securityContext"))


# --- baseline -------------------------------------------------------------------------------------------


def _host_namespaces_and_process(spec: Mapping[str, Any]) -> Iterator[Violation]:
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field) is True:
            yield Violation(f"spec.{field}", "must be unset or false")
    for path, ctx in _security_contexts(spec):
        if _map(ctx.get("windowsOptions")).get("hostProcess") is True:
            yield Violation(f"{path}.windowsOptions.hostProcess", "must be unset or false")


def _privileged_and_capabilities(spec: Mapping[str, Any], allowed: Set[str]) -> Iterator[Violation]:
    for path, container in _containers(spec):
        ctx = _map(container.get("securityContext"))
        if ctx.get("privileged") is True:
            yield Violation(f"{path}.securityContext.privileged", "must be unset or false")
        added = _list(_map(ctx.get("capabilities")).get("add"))
        if any(cap not in allowed for cap in added):
            yield Violation(f"{path}.securityContext.capabilities.add", "adds a capability not allowed")


def _host_paths_and_ports(spec: Mapping[str, Any]) -> Iterator[Violation]:
    for i, volume in enumerate(_list(spec.get("volumes"))):
        if "hostPath" in _map(volume):
            yield Violation(f"spec.volumes[{i}].hostPath", "hostPath volumes are not allowed")
    for path, container in _containers(spec):
        for j, port in enumerate(_list(container.get("ports"))):
            if _map(port).get("hostPort") not in (None, 0):
                yield Violation(f"{path}.ports[{j}].hostPort", "must be unset or 0")
        handlers = [(p, _map(container.get(p))) for p in PROBES]
        lifecycle = _map(container.get("lifecycle"))
        handlers += [(f"lifecycle.{h}", _map(lifecycle.get(h))) for h in ("postStart", "preStop")]
        for where, handler in handlers:
            for kind in ("httpGet", "tcpSocket"):
                if _map(handler.get(kind)).get("host") not in (None, ""):
                    yield Violation(f"{path}.{where}.{kind}.host", "must be unset or empty")


def _profiles(spec: Mapping[str, Any], annotations: Mapping[str, str]) -> Iterator[Violation]:
    for path, ctx in _security_contexts(spec):
        if _map(ctx.get("appArmorProfile")).get("type") not in (None, *PROFILE_TYPES):
            yield Violation(f"{path}.appArmorProfile.type", "must be unset, RuntimeDefault or Localhost")
        if _map(ctx.get("seccompProfile")).get("type") not in (None, *PROFILE_TYPES):
            yield Violation(f"{path}.seccompProfile.type", "must be unset, RuntimeDefault or Localhost")
        selinux = _map(ctx.get("seLinuxOptions"))
        if selinux.get("type") not in (None, *SELINUX_TYPES):
            yield Violation(f"{path}.seLinuxOptions.type", "is not an allowed SELinux type")
        for field in ("user", "role"):
            if selinux.get(field) not in (None, ""):
                yield Violation(f"{path}.seLinuxOptions.{field}", "must be unset or empty")
        if ctx.get("procMount") not in (None, "Default"):
            yield Violation(f"{path}.procMount", "must be unset or Default")
    for key, value in annotations.items():
        if (
            key.startswith(APPARMOR_ANNOTATION)
            and value != "runtime/default"
            and not value.startswith("localhost/")
        ):
            yield Violation(f"metadata.annotations[{key}]", "must be runtime/default or localhost/*")


def _sysctls(spec: Mapping[str, Any]) -> Iterator[Violation]:
    for i, sysctl in enumerate(_list(_map(spec.get("securityContext")).get("sysctls"))):
        if _map(sysctl).get("name") not in SAFE_SYSCTLS:
            yield Violation(f"spec.securityContext.sysctls[{i}].name", "is not a safe sysctl")


# --- restricted -----------------------------------------------------------------------------------------


def _volume_types(spec: Mapping[str, Any]) -> Iterator[Violation]:
    for i, volume in enumerate(_list(spec.get("volumes"))):
        kinds = set(_map(volume)) - {"name"}
        if kinds - RESTRICTED_VOLUME_TYPES - {"hostPath"}:  # hostPath is reported by baseline already
            yield Violation(f"spec.volumes[{i}]", "volume type is not allowed by restricted")


def _restricted_containers(spec: Mapping[str, Any]) -> Iterator[Violation]:
    pod = _map(spec.get("securityContext"))
    pod_non_root = pod.get("runAsNonRoot") is True
    pod_seccomp = _map(pod.get("seccompProfile")).get("type") in PROFILE_TYPES
    if pod.get("runAsNonRoot") is False:
        yield Violation("spec.securityContext.runAsNonRoot", "must be unset or true")
    if pod.get("runAsUser") == 0:
        yield Violation("spec.securityContext.runAsUser", "must not be 0")
    for path, container in _containers(spec):
        ctx = _map(container.get("securityContext"))
        where = f"{path}.securityContext"
        if ctx.get("allowPrivilegeEscalation") is not False:
            yield Violation(f"{where}.allowPrivilegeEscalation", "must be false")
        if ctx.get("runAsNonRoot") is False or not (pod_non_root or ctx.get("runAsNonRoot") is True):
            yield Violation(f"{where}.runAsNonRoot", "must be true (here or in spec.securityContext)")
        if ctx.get("runAsUser") == 0:
            yield Violation(f"{where}.runAsUser", "must not be 0")
        if not pod_seccomp and _map(ctx.get("seccompProfile")).get("type") not in PROFILE_TYPES:
            yield Violation(f"{where}.seccompProfile.type", "must be RuntimeDefault or Localhost")
        if "ALL" not in _list(_map(ctx.get("capabilities")).get("drop")):
            yield Violation(f"{where}.capabilities.drop", "must include ALL")


# --- the operator's own rules ---------------------------------------------------------------------------


def _operator_rules(spec: Mapping[str, Any]) -> Iterator[Violation]:
    if spec.get("nodeName"):
        yield Violation("spec.nodeName", "tests may not pin themselves to a node (use nodeSelector)")


def named_account(spec: Mapping[str, Any]) -> str:
    """The ServiceAccount the pod names (serviceAccountName, or its deprecated alias), or ''."""
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "")


def _projected_tokens(spec: Mapping[str, Any]) -> Iterator[Violation]:
    """Every `projected.sources[].serviceAccountToken`: a token of the pod's account, automount or not."""
    for i, volume in enumerate(_list(spec.get("volumes"))):
        for j, source in enumerate(_list(_map(_map(volume).get("projected")).get("sources"))):
            if "serviceAccountToken" in _map(source):
                why = f"a token needs a named ServiceAccount labelled {names.TEST_ACCOUNT_SELECTOR}"
                yield Violation(f"spec.volumes[{i}].projected.sources[{j}].serviceAccountToken", why)


def check_service_account(spec: Mapping[str, Any], *, allowed_accounts: Set[str]) -> list[Violation]:
    """A test may name a ServiceAccount only if the caller allowed it (labelled for tests, or a chart
    hook's own), and may carry a projected service-account token only where it may have a token at all
    (`token_allowed`, the rule that decides automountServiceAccountToken)."""
    found: list[Violation] = []
    account = named_account(spec)
    if account and account not in allowed_accounts:
        why = f"names a ServiceAccount not labelled {names.TEST_ACCOUNT_SELECTOR}"
        found.append(Violation("spec.serviceAccountName", why))
    if not token_allowed(spec, allowed_accounts=allowed_accounts):
        found += _projected_tokens(spec)
    return found


def token_allowed(spec: Mapping[str, Any], *, allowed_accounts: Set[str]) -> bool:
    """Whether the pod may have an API token mounted: only with a named, allowed ServiceAccount."""
    account = named_account(spec)
    return bool(account) and account in allowed_accounts


def check_pod_spec(
    spec: Mapping[str, Any],
    *,
    level: PodSecurityLevel,
    annotations: Mapping[str, str] | None = None,
) -> list[Violation]:
    """Every violation of `level` (and of the operator's own rules) in a PodSpec dict."""
    found = list(_operator_rules(spec))
    if level == PodSecurityLevel.PRIVILEGED:
        return found
    restricted = level == PodSecurityLevel.RESTRICTED
    found += _host_namespaces_and_process(spec)
    found += _privileged_and_capabilities(
        spec, RESTRICTED_CAPABILITIES if restricted else BASELINE_CAPABILITIES
    )
    found += _host_paths_and_ports(spec)
    found += _profiles(spec, annotations or {})
    found += _sysctls(spec)
    if restricted:
        found += _volume_types(spec)
        found += _restricted_containers(spec)
    return found


def describe(violations: list[Violation], *, limit: int = 3) -> str:
    """One line for a test result: the first few violations and how many more."""
    text = "; ".join(str(v) for v in violations[:limit])
    more = len(violations) - limit
    return f"{text} (and {more} more)" if more > 0 else text
