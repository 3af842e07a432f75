"""One error hierarchy for helm-e2e; client errors are wrapped with `raise ... from e`."""

from __future__ import annotations


class HelmE2EError(Exception):
    """Base of every error helm-e2e raises on purpose."""


class ReleaseDecodeError(HelmE2EError):
    """A Helm release secret could not be decoded (bad base64, gzip, JSON, shape or size)."""


class RunRefused(HelmE2EError):
    """The E2ERun is not the operator's record of its release (core/lifecycle/trust.py): it ends Refused."""


class SuiteInvalid(HelmE2EError):
    """An E2ESuite failed validation or its templates could not be rendered."""

    def __init__(self, suite: str, message: str) -> None:
        super().__init__(f"E2ESuite {suite}: {message}")
        self.suite = suite
        self.message = message


class MailError(HelmE2EError):
    """Sending the report failed."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class NotifyError(HelmE2EError):
    """Delivering a webhook notification failed; the message never holds the URL or the signing key."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class KubeError(HelmE2EError):
    """The Kubernetes API answered with an error (or did not answer in time).

    `status` is the HTTP status (0: no answer), `reason` the API's own reason (Forbidden, Invalid, ...), and
    the message the API's own message: for the objects we create it names fields, never secret data.
    """

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason or ("Timeout" if status == 0 else "ApiError")
        self.message = message


class ApiRefused(KubeError):
    """The API refused to create an object (403, 422, quota, webhook, name taken): no retry fixes it."""


class ReleaseIdentityError(ReleaseDecodeError):
    """The Secret's name, its labels and the release JSON disagree on the release's name or revision."""


class SandboxError(HelmE2EError):
    """Work run in the bounded sandbox process did not finish within its limits."""


class SandboxTimeout(SandboxError):
    """The sandboxed work ran longer than its time limit; its worker process was killed."""


class SandboxMemory(SandboxError):
    """The sandboxed work needed more memory than the worker's address-space limit."""


class LimitExceeded(HelmE2EError):
    """Untrusted input is larger or more complex than the operator is willing to parse."""


class JunitInvalid(HelmE2EError, ValueError):
    """A JUnit XML document (a test's junit.xml) is malformed, too large, or declares a DTD/entities."""


class NameTaken(ApiRefused):
    """A chart test hook's object cannot be created: its name is held by an object that is not ours."""

    def __init__(self, kind: str, namespace: str, name: str, why: str) -> None:
        super().__init__(f"{kind} {namespace}/{name}: {why}", status=409, reason="NameTaken")
        self.kind = kind
        self.namespace = namespace
        self.name = name


class StoreError(HelmE2EError):
    """The artifact store refused or failed an operation (artifacts/store.py).

    `reason` is a short machine-readable word (InvalidKey, InvalidUrl, TooLarge, TooMany, NotFound,
    PermissionDenied, Unauthenticated, Timeout, Unavailable, ...). The message names the store by its
    description (no credentials, no query) and the key; it never quotes the storage library's own error text
    (which can carry the endpoint URL or a server's response body) nor any object's contents.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
