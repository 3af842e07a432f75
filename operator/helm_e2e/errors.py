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
