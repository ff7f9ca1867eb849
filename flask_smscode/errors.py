"""One exception tree for everything the package refuses, with its HTTP mapping.

Each error carries a stable machine code (the ``error`` field of a JSON answer), an HTTP
status, and a message *key* with parameters rather than finished text: the sentence is
looked up in :mod:`flask_smscode.messages` when the answer is built, in the language the
request asked for. ``exc.message`` is the English sentence, for logs and Python callers.
Messages never contain a code, a full phone number or a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .messages import Catalogue


class SmsCodeError(Exception):
    """Base class: ``code`` is the machine-readable error, ``status`` the HTTP status.

    ``key`` picks the sentence in the catalogue (default: ``code``; variants such as
    ``invalid_code.last``); ``params`` fill its ``{placeholders}``. A literal ``message``
    (e.g. from a custom sender) is shown as given, in every language.
    """

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400

    def __init__(self, message: str | None = None, *, key: str | None = None,
                 params: Mapping[str, Any] | None = None, retry_after: int | None = None,
                 **extra: Any) -> None:
        self.key = key or self.code
        self.params = dict(params or {})
        self.literal_message = message
        self.retry_after = retry_after
        self.extra = extra
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The English sentence (logs, CLI in English, Python callers)."""
        return self.render("en")

    def render(self, language: str | None = None, catalogue: Catalogue | None = None) -> str:
        """The sentence in ``language`` (the catalogue's default when ``None``)."""
        if self.literal_message:
            return self.literal_message
        from .messages import default_catalogue

        values = {**self.extra, "retry_after": self.retry_after, **self.params}
        # A subclass from before the catalogue may still carry its own English text.
        fallback = getattr(self, "default_message", None)
        return (catalogue or default_catalogue()).text(self.key, language, values,
                                                       fallback=fallback)

    def to_dict(self, language: str | None = "en",
                catalogue: Catalogue | None = None) -> dict[str, Any]:
        """The JSON body of the error answer; ``error`` never depends on the language."""
        body: dict[str, Any] = {"ok": False, "error": self.code,
                                "message": self.render(language, catalogue)}
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        body.update(self.extra)
        return body


class InvalidRequest(SmsCodeError):
    code = "invalid_request"


class InvalidPhone(SmsCodeError):
    code = "invalid_phone"


class RegionNotAllowed(SmsCodeError):
    code = "region_not_allowed"


class InvalidCode(SmsCodeError):
    code = "invalid_code"

    def __init__(self, message: str | None = None, *, attempts_left: int,
                 key: str | None = None) -> None:
        key = key or ("invalid_code" if attempts_left else "invalid_code.last")
        super().__init__(message, key=key, attempts_left=attempts_left)
        self.attempts_left = attempts_left


class CodeExpired(SmsCodeError):
    code = "code_expired"


class TooManyAttempts(SmsCodeError):
    code = "too_many_attempts"
    status = 429

    def __init__(self, message: str | None = None, *, retry_after: int = 60,
                 key: str | None = None) -> None:
        super().__init__(message, key=key, retry_after=retry_after)


class Throttled(SmsCodeError):
    code = "throttled"
    status = 429

    def __init__(self, message: str | None = None, *, retry_after: int = 60,
                 key: str | None = None) -> None:
        # Every 429 says when to retry, even when a custom sender gives no figure.
        super().__init__(message, key=key, retry_after=retry_after)


class ProviderError(SmsCodeError):
    """The SMS provider refused or failed the send; nothing was delivered."""

    code = "provider_error"
    status = 502

    def __init__(self, message: str | None = None, *, provider_code: str | None = None,
                 request_id: str | None = None, key: str | None = None) -> None:
        super().__init__(message, key=key)
        # Kept for logs and callers, deliberately not part of the JSON body.
        self.provider_code = provider_code
        self.request_id = request_id


class StorageUnavailable(SmsCodeError):
    code = "storage_unavailable"
    status = 503

    def __init__(self, message: str | None = None, *, retry_after: int = 5,
                 key: str | None = None) -> None:
        super().__init__(message, key=key, retry_after=retry_after)


class InvalidToken(SmsCodeError):
    """A verified-phone token is malformed, forged, expired, already used or for another purpose."""

    code = "invalid_token"


class ChallengeRequired(SmsCodeError):
    """The pre-send hook (captcha, risk check; SMSCODE_PRE_SEND_HOOK) refused the send
    before anything was counted or sent."""

    code = "challenge_required"
    status = 400


class IdempotencyKeyReused(SmsCodeError):
    """The Idempotency-Key was used before for another request (another phone or purpose)."""

    code = "idempotency_key_reused"
    status = 422


class RequestInProgress(SmsCodeError):
    """The Idempotency-Key's first request is still running; retry after ``retry_after``."""

    code = "request_in_progress"
    status = 409

    def __init__(self, message: str | None = None, *, retry_after: int = 1,
                 key: str | None = None) -> None:
        super().__init__(message, key=key, retry_after=retry_after)


class ConfigurationError(RuntimeError):
    """A SMSCODE_* setting is missing or out of range; raised when the app starts."""
