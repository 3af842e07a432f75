"""One error hierarchy for helm-e2e; client errors are wrapped with `raise ... from e`."""


class HelmE2EError(Exception):
    """Base of every error helm-e2e raises on purpose."""


class ReleaseDecodeError(HelmE2EError):
    """A Helm release secret could not be decoded (bad base64, gzip, JSON, shape or size)."""


class SuiteInvalid(HelmE2EError):
    """An E2ESuite failed validation or its templates could not be rendered."""

    def __init__(self, suite: str, message: str) -> None:
        super().__init__(f"E2ESuite {suite}: {message}")
        self.suite = suite
        self.message = message


class PlanError(HelmE2EError):
    """A test could not be planned (for example a chart hook that is not a Pod)."""


class MailError(HelmE2EError):
    """Sending the report failed."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class ApiRefused(HelmE2EError):
    """The Kubernetes API refused a call. `reason` is the API's (Forbidden, Invalid, ...), the message its own
    (for the calls that raise this, the API never echoes secret data)."""

    def __init__(self, *, status: int, reason: str, message: str) -> None:
        super().__init__(f"{reason} ({status}): {message}")
        self.status = status
        self.reason = reason
        self.message = message


class NameTaken(HelmE2EError):
    """A chart test hook's object cannot be created: its name is held by an object that is not ours."""

    def __init__(self, kind: str, namespace: str, name: str, why: str) -> None:
        super().__init__(f"{kind} {namespace}/{name}: {why}")
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.reason = "NameTaken"
