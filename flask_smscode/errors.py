"""One exception tree for everything the package refuses, with its HTTP mapping.

Each error carries a stable machine code (the ``error`` field of a JSON answer) and
an HTTP status, so the blueprint renders every refusal in one place. Messages are
written for people and never contain a code, a full phone number or a key.
"""

from __future__ import annotations

from typing import Any, ClassVar


class SmsCodeError(Exception):
    """Base class: ``code`` is the machine-readable error, ``status`` the HTTP status."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    default_message: ClassVar[str] = "The request could not be completed."

    def __init__(self, message: str | None = None, *, retry_after: int | None = None,
                 **extra: Any) -> None:
        self.message = message or self.default_message
        self.retry_after = retry_after
        self.extra = extra
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of the error answer."""
        body: dict[str, Any] = {"ok": False, "error": self.code, "message": self.message}
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        body.update(self.extra)
        return body


class InvalidRequest(SmsCodeError):
    code = "invalid_request"
    default_message = "The request is missing a field or has a field of the wrong type."


class InvalidPhone(SmsCodeError):
    code = "invalid_phone"
    default_message = "This is not a valid mobile phone number."


class RegionNotAllowed(SmsCodeError):
    code = "region_not_allowed"
    default_message = "Codes cannot be sent to phone numbers in this region."


class InvalidCode(SmsCodeError):
    code = "invalid_code"
    default_message = "The code is not correct."

    def __init__(self, message: str | None = None, *, attempts_left: int) -> None:
        super().__init__(message, attempts_left=attempts_left)
        self.attempts_left = attempts_left


class CodeExpired(SmsCodeError):
    code = "code_expired"
    default_message = "There is no valid code for this phone; request a new one."


class TooManyAttempts(SmsCodeError):
    code = "too_many_attempts"
    status = 429
    default_message = "Too many wrong codes for this phone; try again later."

    def __init__(self, message: str | None = None, *, retry_after: int = 60) -> None:
        super().__init__(message, retry_after=retry_after)


class Throttled(SmsCodeError):
    code = "throttled"
    status = 429
    default_message = "Too many requests; try again later."

    def __init__(self, message: str | None = None, *, retry_after: int = 60) -> None:
        # Every 429 says when to retry, even when a custom sender gives no figure.
        super().__init__(message, retry_after=retry_after)


class ProviderError(SmsCodeError):
    """The SMS provider refused or failed the send; nothing was delivered."""

    code = "provider_error"
    status = 502
    default_message = "The SMS could not be sent; try again later."

    def __init__(self, message: str | None = None, *, provider_code: str | None = None,
                 request_id: str | None = None) -> None:
        super().__init__(message)
        # Kept for logs and callers, deliberately not part of the JSON body.
        self.provider_code = provider_code
        self.request_id = request_id


class StorageUnavailable(SmsCodeError):
    code = "storage_unavailable"
    status = 503
    default_message = "The verification service is temporarily unavailable; try again shortly."

    def __init__(self, message: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(message, retry_after=retry_after)


class InvalidToken(SmsCodeError):
    """A verified-phone token is malformed, forged, expired, already used or for another purpose."""

    code = "invalid_token"
    default_message = "The verification token is invalid or has expired."


class ConfigurationError(RuntimeError):
    """A SMSCODE_* setting is missing or out of range; raised when the app starts."""
