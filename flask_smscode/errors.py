"""The package's one exception tree, and each HTTP refusal's mapping.

Everything the package raises derives from :class:`FlaskSmsCodeError`, so
``except FlaskSmsCodeError`` catches all of it (itsdangerous keeps one root, ``BadData``,
the same way)::

    FlaskSmsCodeError
    ├── SmsCodeError           a refusal of /sms/send or /sms/verify: code + HTTP status
    │   ├── InvalidRequest, InvalidPhone, RegionNotAllowed, InvalidCode, CodeExpired, ...
    │   └── ProviderError      502: the SMS provider refused or failed the send
    │       └── ProviderUnavailable   ... definitely, the provider's own fault: fail over
    ├── ConfigurationError     a SMSCODE_* setting is wrong (also a RuntimeError, as before)
    ├── DeliveryUnconfirmed    a sender's "the SMS may have gone out": nothing to refuse
    └── AliyunSmsError         a failed call of the Alibaba Cloud client (numeric .code;
                               that vendor's own branch, in its folder's errors.py)

This module holds the provider-blind part of the tree; a vendor's client errors live in its
own folder and derive from :class:`FlaskSmsCodeError`, so the root still catches them.

Each HTTP refusal carries a stable machine code (the ``error`` field of a JSON answer), an HTTP
status, and a message *key* with parameters rather than finished text: the sentence is
looked up in :mod:`flask_smscode.messages` when the answer is built, in the language the
request asked for. ``exc.message`` is the English sentence, for logs and Python callers.
Messages never contain a code, a full phone number or a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self is 3.11+; annotations only

    from flask_smscode.messages import Catalogue


class FlaskSmsCodeError(Exception):
    """The root of every exception flask-smscode raises."""


class SmsCodeError(FlaskSmsCodeError):
    """Base class: ``code`` is the machine-readable error, ``status`` the HTTP status.

    ``key`` picks the sentence in the catalogue (default: ``code``; variants such as
    ``invalid_code.last``); ``params`` fill its ``{placeholders}``. A literal ``message``
    (e.g. from a custom sender) is shown as given, in every language.

    A refusal caused by the SMS provider carries the provider's own fields
    (:meth:`with_provider`), never in the JSON body: they are for logs and callers, so the
    service reads them here instead of digging in ``__cause__``.
    """

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    # The provider's account of a refusal (None: not the provider's, or not known).
    provider_code: str | None = None
    request_id: str | None = None
    biz_id: str | None = None
    out_id: str | None = None
    sender: str | None = None
    # An Idempotency-Key replay of an earlier answer (core/idempotency.py); its status when
    # the stored answer's differs from the class's own.
    replayed: bool = False
    replayed_status: int | None = None
    # What the service observed of the request this error ended (events.Outcome): logs,
    # counts and signals read it, never the client.
    outcome: Any = None

    def __init__(
        self,
        message: str | None = None,
        *,
        key: str | None = None,
        params: Mapping[str, Any] | None = None,
        retry_after: int | None = None,
        **extra: Any,
    ) -> None:
        self.key = key or self.code
        self.params = dict(params or {})
        self.literal_message = message
        self.retry_after = retry_after
        self.extra = extra
        # The English text is rendered when asked for (str(), a log, a traceback), not on
        # every raise: a wrong code or a throttled client raises one per request, and the
        # HTTP answer renders its own language from a cache (web/blueprint.py).
        super().__init__()

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def with_provider(
        self,
        *,
        provider_code: str | None = None,
        request_id: str | None = None,
        biz_id: str | None = None,
        out_id: str | None = None,
        sender: str | None = None,
    ) -> Self:
        """Attach what the provider said (for logs and failover); returns ``self`` to raise."""
        self.provider_code, self.request_id = provider_code, request_id
        self.biz_id, self.out_id, self.sender = biz_id, out_id, sender
        return self

    @property
    def message(self) -> str:
        """The English sentence (logs, CLI in English, Python callers)."""
        return self.render("en")

    def render(self, language: str | None = None, catalogue: Catalogue | None = None) -> str:
        """The sentence in ``language`` (the catalogue's default when ``None``)."""
        if self.literal_message:
            return self.literal_message
        from flask_smscode.messages import default_catalogue

        values = {**self.extra, "retry_after": self.retry_after, **self.params}
        # A subclass from before the catalogue may still carry its own English text.
        fallback = getattr(self, "default_message", None)
        return (catalogue or default_catalogue()).text(
            self.key, language, values, fallback=fallback
        )

    def to_dict(
        self, language: str | None = "en", catalogue: Catalogue | None = None
    ) -> dict[str, Any]:
        """The JSON body of the error answer; ``error`` never depends on the language."""
        body: dict[str, Any] = {
            "ok": False,
            "error": self.code,
            "message": self.render(language, catalogue),
        }
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

    def __init__(
        self, message: str | None = None, *, attempts_left: int, key: str | None = None
    ) -> None:
        key = key or ("invalid_code" if attempts_left else "invalid_code.last")
        super().__init__(message, key=key, attempts_left=attempts_left)
        self.attempts_left = attempts_left


class CodeExpired(SmsCodeError):
    code = "code_expired"


class TooManyAttempts(SmsCodeError):
    code = "too_many_attempts"
    status = 429

    def __init__(
        self, message: str | None = None, *, retry_after: int = 60, key: str | None = None
    ) -> None:
        super().__init__(message, key=key, retry_after=retry_after)


class Throttled(SmsCodeError):
    code = "throttled"
    status = 429

    def __init__(
        self, message: str | None = None, *, retry_after: int = 60, key: str | None = None
    ) -> None:
        # Every 429 says when to retry, even when a custom sender gives no figure.
        super().__init__(message, key=key, retry_after=retry_after)


class ProviderError(SmsCodeError):
    """The SMS provider refused or failed the send; nothing was delivered."""

    code = "provider_error"
    status = 502

    def __init__(
        self,
        message: str | None = None,
        *,
        provider_code: str | None = None,
        request_id: str | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(message, key=key)
        # Kept for logs and callers, deliberately not part of the JSON body.
        self.provider_code = provider_code
        self.request_id = request_id


class ProviderUnavailable(ProviderError):
    """A *definite* failure of the provider itself (5xx, no connection, its system error,
    the account out of service or credit): nothing was sent, so the next sender of
    ``SMSCODE_SENDER`` may try. Still a 502 ``provider_error`` when it is the last one."""


class StorageUnavailable(SmsCodeError):
    code = "storage_unavailable"
    status = 503

    def __init__(
        self, message: str | None = None, *, retry_after: int = 5, key: str | None = None
    ) -> None:
        super().__init__(message, key=key, retry_after=retry_after)


class InvalidToken(SmsCodeError):
    """A verified-phone token is malformed, forged, expired, already used or for another purpose."""

    code = "invalid_token"


class ChallengeRequired(SmsCodeError):
    """The pre-send hook (captcha, risk check; SMSCODE_PRE_SEND_HOOK) refused the send:
    counted against the client's per-IP budget, nothing else counted or sent."""

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

    def __init__(
        self, message: str | None = None, *, retry_after: int = 1, key: str | None = None
    ) -> None:
        super().__init__(message, key=key, retry_after=retry_after)


class CrossSiteRequest(SmsCodeError):
    """A browser posted from another origin (``Sec-Fetch-Site``/``Origin``) that is not in
    SMSCODE_TRUSTED_ORIGINS: refused before anything is counted, stored or sent
    (see :mod:`flask_smscode.core.origins`)."""

    code = "cross_site_request"
    status = 403


class ConfigurationError(FlaskSmsCodeError, RuntimeError):
    """A SMSCODE_* setting is missing or out of range; raised when the app starts.

    Still a ``RuntimeError``, as it was before the tree had one root.
    """


class DeliveryUnconfirmed(FlaskSmsCodeError):
    """Raise from a sender when the request may have reached the provider but no answer
    came back (a read timeout). The code and cooldown are kept and the send is not retried.
    """

    def __init__(
        self,
        message: str = "The provider did not answer in time",
        *,
        provider_code: str | None = None,
        request_id: str | None = None,
        out_id: str | None = None,
        sender: str | None = None,
    ) -> None:
        super().__init__(message)
        self.provider_code = provider_code
        self.request_id = request_id
        self.out_id = out_id
        self.sender = sender
