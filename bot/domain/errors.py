"""The IMAS error tree, split by what the caller must do.

    ImasError
    ├── ConfigError             settings or configuration file invalid (startup / CLI exit 2)
    ├── InputError              bad user input: 4xx / ephemeral message; never retried
    │   ├── NotFoundError       the thing named does not exist (404)
    │   └── ConflictError       unique name taken, invalid state transition (409)
    ├── PermissionDeniedError   authenticated but not allowed (403)
    ├── AuthenticationError     no or bad credentials (401)
    └── ProviderError           an outbound call failed
        ├── RetryableProviderError   timeouts, 5xx, 429/ratelimited (``retry_after`` seconds)
        └── PermanentProviderError   4xx, invalid_auth, channel_not_found (``hint`` for humans)

Only ``RetryableProviderError`` is retried by the outbox; everything else ends a
delivery as ``dead`` with its message recorded.
"""

from __future__ import annotations


class ImasError(Exception):
    """Base of every error IMAS raises on purpose."""


class ConfigError(ImasError):
    """A setting or the configuration file is missing or invalid."""


class InputError(ImasError):
    """User input is invalid. ``field`` names the offending input when known."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFoundError(InputError):
    status_code = 404


class ConflictError(InputError):
    status_code = 409


class AuthenticationError(ImasError):
    status_code = 401


class PermissionDeniedError(ImasError):
    status_code = 403


class ProviderError(ImasError):
    """An outbound call to a provider failed.

    ``code`` is the target's own error code when it has one (``channel_not_found``,
    ``HTTP 500``...), ``hint`` a human next step.
    """

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint

    def describe(self) -> str:
        text = self.message
        if self.hint:
            text = f"{text} (hint: {self.hint})"
        return text


class RetryableProviderError(ProviderError):
    """Temporary failure: retry later, not before ``retry_after`` seconds when given."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        hint: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code, hint=hint)
        self.retry_after = retry_after


class PermanentProviderError(ProviderError):
    """Failure that will not go away by retrying (bad config, auth, missing target)."""


class Defer(Exception):  # noqa: N818 - a control-flow signal, not an error
    """An outbox step cannot run yet (it waits on another step, or its provider's circuit
    is open); the outbox retries it after ``seconds`` without counting an attempt."""

    def __init__(self, reason: str, seconds: float = 1.0) -> None:
        super().__init__(reason)
        self.seconds = seconds
