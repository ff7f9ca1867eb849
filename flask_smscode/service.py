"""The decisions: send (normalise, gate, generate, store, send, settle) and verify.

One :class:`SmsCodeService` exists per Flask app, in ``app.extensions["smscode"]``; it
holds no reference to the app. Public functions at the bottom reach it through
``current_app``, for views and app factories that use the Python API directly.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from .codes import generate_code, hash_code, is_well_formed
from .config import Limit, Settings
from .errors import (
    CodeExpired,
    InvalidCode,
    InvalidRequest,
    InvalidToken,
    ProviderError,
    SmsCodeError,
    StorageUnavailable,
    Throttled,
    TooManyAttempts,
)
from .events import log_event
from .limiter_adapter import FlaskLimiterAdapter, ratelimit_backend
from .messages import Catalogue
from .metrics import STATS
from .phones import mask_phone, normalize_phone
from .ratelimit import client_key
from .senders import DeliveryUnconfirmed, Sender, build_sender
from .signals import code_sent, code_verified, verification_failed
from .stores import ClientLimits, PhoneStatus, Refusal, Store, VerifyOutcome, store_from_uri
from .tokens import TokenSigner, VerifiedPhone

EXTENSION_KEY = "smscode"
logger = logging.getLogger("flask_smscode")


@dataclass(frozen=True)
class SendResult:
    """A code is live for ``phone``. ``delivery`` is ``"sent"``, or ``"unconfirmed"`` when
    the provider did not answer in time (the SMS may still arrive; do not resend early)."""

    phone: str
    purpose: str
    expires_in: int
    resend_in: int
    delivery: str

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)

    def as_json(self) -> dict[str, Any]:
        return {"ok": True, "phone": self.masked_phone, "purpose": self.purpose,
                "expires_in": self.expires_in, "resend_in": self.resend_in,
                "delivery": self.delivery}


@dataclass(frozen=True)
class VerifyResult:
    """``phone`` was verified for ``purpose``; ``token`` proves it to your own views."""

    phone: str
    purpose: str
    token: str
    expires_in: int

    def as_json(self) -> dict[str, Any]:
        return {"ok": True, "phone": self.phone, "purpose": self.purpose, "token": self.token,
                "token_expires_in": self.expires_in}


class SmsCodeService:
    """Per-app state: validated settings, the store, the sender, the IP limiter."""

    def __init__(self, config: Mapping[str, Any], *, debug: bool = False,
                 testing: bool = False) -> None:
        self.settings = s = Settings.from_config(config)
        STATS.allow_purposes(s.purposes)  # metric labels and logs name only these purposes
        relaxed = debug or testing
        if s.storage_uri.startswith("memory") and not relaxed:
            warnings.warn(
                "flask-smscode is using the in-memory store (SMSCODE_STORAGE_URI = "
                "'memory://'): each worker process keeps its own codes and throttles, so a "
                "code sent through one gunicorn worker fails on another and every limit is "
                "multiplied by the number of workers. Set SMSCODE_STORAGE_URI to a "
                "redis:// URI in production.", UserWarning, stacklevel=3)
        if s.sender == "console" and not relaxed:
            warnings.warn(
                "flask-smscode is using the console sender: no SMS is sent. Set "
                "SMSCODE_SENDER = 'aliyun' in production.", UserWarning, stacklevel=3)
        self.store: Store = store_from_uri(s.storage_uri, key_prefix=s.key_prefix,
                                           timeout=s.storage_timeout, **s.storage_options)
        self.sender: Sender = build_sender(s.sender, config, show_code=relaxed,
                                           purposes=s.purposes)
        # Per-IP limits: counted by the store inside the send/verify decision (one round
        # trip), or by the app's Flask-Limiter when SMSCODE_RATELIMIT_BACKEND says so.
        self.flask_limiter: FlaskLimiterAdapter | None = None
        if ratelimit_backend(config) == "flask-limiter":
            self.flask_limiter = FlaskLimiterAdapter.from_config(config)
        self.ip_limits: dict[str, tuple[Limit, ...]] = {
            "send": tuple(Limit.from_item(i) for i in s.ip_send_limits),
            "verify": tuple(Limit.from_item(i) for i in s.ip_verify_limits)}
        self.messages = Catalogue.from_config(config)  # answers in the client's language
        # Separate keys for the code HMAC and the token signature, both from the app secret.
        self._hash_key = hmac.new(s.secret, b"flask-smscode code hash", hashlib.sha256).digest()
        self.tokens = TokenSigner(s.secret, s.token_ttl)

    # -- inputs --------------------------------------------------------------------------
    def check_purpose(self, purpose: object) -> str:
        """``purpose`` if configured; ``None`` means ``login`` (which must be configured too)."""
        if purpose is None:
            purpose = "login"
        if not isinstance(purpose, str) or purpose not in self.settings.purposes:
            raise InvalidRequest(key="invalid_request.purpose",
                                 params={"purposes": ", ".join(self.settings.purposes)},
                                 field="purpose")
        return purpose

    def normalize(self, phone: object) -> str:
        """E.164 form of ``phone`` under this app's region settings."""
        if phone is None or phone == "":
            raise InvalidRequest(key="invalid_request.required", field="phone")
        if not isinstance(phone, str):
            raise InvalidRequest(key="invalid_request.not_string", field="phone")
        return normalize_phone(phone, self.settings.default_region,
                               self.settings.allowed_regions)

    # -- send ----------------------------------------------------------------------------
    def send(self, phone: str, purpose: str = "login", *,
             client_ip: str | None = None) -> SendResult:
        """Issue a code to ``phone`` for ``purpose`` (raises an :class:`SmsCodeError`).

        With ``client_ip`` the per-IP limit is counted first, before any validation, so
        malformed floods spend the client's budget too. Every outcome is one log line.
        """
        started = time.monotonic()
        event: dict[str, Any] = {"purpose": purpose if isinstance(purpose, str) else None}
        try:
            result = self._send(phone, purpose, client_ip, event)
        except SmsCodeError as exc:
            # The provider failing or the store down is the operator's business (WARNING);
            # throttled attackers and typos are routine (INFO).
            level = logging.WARNING if (isinstance(exc, (ProviderError, StorageUnavailable))
                                        or event.get("provider_code")) else logging.INFO
            self._log("send", level, exc.code, started, event)
            raise
        self._log("send", logging.WARNING if result.delivery == "unconfirmed" else logging.INFO,
                  event.pop("outcome"), started, event)
        return result

    def _send(self, phone: object, purpose: object, client_ip: str | None,
              event: dict[str, Any]) -> SendResult:
        s = self.settings
        client = self._client_limits("send", client_ip)
        with self._counted_if_refused("send", client):
            purpose = event["purpose"] = self.check_purpose(purpose)
            e164 = self.normalize(phone)
        event["phone"] = mask_phone(e164)
        fixed = s.test_numbers.get(e164)
        code = fixed or generate_code(s.code_length)
        # Also the OutId of the SendSms call; 64 random bits keep the phone's hash compact.
        send_id = event["out_id"] = uuid.uuid4().hex[:16]
        decision = self.store.reserve_send(
            e164, purpose, self._hash(e164, purpose, code), send_id, ttl=s.code_ttl,
            cooldown=s.resend_interval, limits=s.phone_limits, client=client)
        if decision.refused_by is Refusal.CLIENT:
            raise Throttled(key="throttled.ip", retry_after=decision.retry_after)
        if decision.refused_by is Refusal.PHONE:
            raise Throttled(key="throttled.cooldown", retry_after=decision.retry_after)
        if fixed is not None:  # a test number: every rule above applied, no SMS goes out
            event["outcome"] = "test_number"
            self._signal(code_sent, phone=e164, purpose=purpose, delivery="test")
            return SendResult(e164, purpose, s.code_ttl, s.resend_interval, "sent")
        delivery = self._deliver(e164, code, purpose, send_id, event)
        event["outcome"] = delivery
        self._signal(code_sent, phone=e164, purpose=purpose, delivery=delivery)
        return SendResult(e164, purpose, s.code_ttl, s.resend_interval, delivery)

    def _deliver(self, phone: str, code: str, purpose: str, send_id: str,
                 event: dict[str, Any]) -> str:
        """Hand the code to the sender and settle the reservation by the outcome.

        A definite refusal cancels the reservation (no live code, cooldown given back); an
        unknown outcome keeps both, because the SMS may arrive.
        """
        try:
            receipt = self.sender.send(phone, code, purpose, out_id=send_id)
        except DeliveryUnconfirmed as exc:
            event.update(provider_code=exc.provider_code, request_id=exc.request_id)
            return "unconfirmed"
        except SmsCodeError as exc:
            failure: SmsCodeError = exc
            # The provider's code and request id ride on the error or on its cause.
            source = exc if getattr(exc, "provider_code", None) else exc.__cause__
            event.update(provider_code=getattr(source, "provider_code", None),
                         request_id=getattr(source, "request_id", None))
        except Exception as exc:  # a custom sender's bug; its text may hold the code
            failure = ProviderError()
            event["exception"] = type(exc).__name__
        else:
            event.update(provider_code=receipt.provider_code, request_id=receipt.request_id)
            return "sent"
        self._cancel(phone, purpose, send_id)
        raise failure  # outside the except blocks: no chained sender exception

    def _cancel(self, phone: str, purpose: str, send_id: str) -> None:
        try:
            self.store.cancel_send(phone, purpose, send_id, limits=self.settings.phone_limits)
        except StorageUnavailable:
            # The code was never delivered, so leaving it is harmless; it expires with its TTL.
            log_event(logging.WARNING, "send.cancel", phone=mask_phone(phone), purpose=purpose,
                      outcome="storage_unavailable")

    def _hash(self, phone: str, purpose: str, code: str) -> str:
        # 96 bits of the HMAC in base64 (16 characters): a wrong code matches by chance
        # with probability 2**-96, and the field stays short enough for Redis' compact
        # hash encoding (see stores/lua/common.lua).
        digest = bytes.fromhex(hash_code(self._hash_key, phone, purpose, code)[:24])
        return base64.urlsafe_b64encode(digest).decode()

    # -- per-IP limits -------------------------------------------------------------------
    def _client_limits(self, endpoint: str, client_ip: str | None) -> ClientLimits | None:
        """What the store counts for this request's client: ``None`` for the Python API
        without ``client_ip``, or when the app's Flask-Limiter counts (it does so here, and
        raises Throttled when the client is over its limit)."""
        if client_ip is None:
            return None
        if self.flask_limiter is not None:
            self.flask_limiter.hit(endpoint, client_ip)
            return None
        return ClientLimits(client_key(client_ip), self.ip_limits[endpoint])

    @contextlib.contextmanager
    def _counted_if_refused(self, endpoint: str,
                            client: ClientLimits | None) -> Iterator[None]:
        """A request refused before it reaches the store still spends its client's budget
        (in a round trip of its own), so malformed floods are limited like any other; a
        client over its limit hears 429 rather than the validation error."""
        try:
            yield
        except SmsCodeError:
            if client is not None:
                wait = self.store.hit_client(endpoint, client)
                if wait:
                    raise Throttled(key="throttled.ip", retry_after=wait) from None
            raise

    @staticmethod
    def _log(kind: str, level: int, outcome: str, started: float,
             event: dict[str, Any]) -> None:
        log_event(level, kind, phone=event.pop("phone", None) or "-",
                  purpose=event.pop("purpose", None) or "-", outcome=outcome,
                  latency_ms=round((time.monotonic() - started) * 1000, 1), **event)

    # -- verify --------------------------------------------------------------------------
    def verify(self, phone: str, code: str, purpose: str = "login", *,
               client_ip: str | None = None) -> VerifyResult:
        """Check ``code``; on success consume it and return a verified-phone token."""
        started = time.monotonic()
        event: dict[str, Any] = {"purpose": purpose if isinstance(purpose, str) else None}
        try:
            result = self._verify(phone, code, purpose, client_ip, event)
        except SmsCodeError as exc:
            level = logging.WARNING if isinstance(exc, StorageUnavailable) else logging.INFO
            self._log("verify", level, exc.code, started, event)
            raise
        self._log("verify", logging.INFO, "verified", started, event)
        return result

    def _verify(self, phone: object, code: object, purpose: object, client_ip: str | None,
                event: dict[str, Any]) -> VerifyResult:
        s = self.settings
        client = self._client_limits("verify", client_ip)
        with self._counted_if_refused("verify", client):
            purpose = event["purpose"] = self.check_purpose(purpose)
            e164 = self.normalize(phone)
            event["phone"] = mask_phone(e164)
            if code is None or code == "":
                raise InvalidRequest(key="invalid_request.required", field="code")
            if not isinstance(code, str):
                raise InvalidRequest(key="invalid_request.not_string", field="code")
            if not is_well_formed(code, s.code_length):
                raise InvalidRequest(key="invalid_request.code_format",
                                     params={"length": s.code_length}, field="code")
        result = self.store.check_code(e164, purpose, self._hash(e164, purpose, code),
                                       max_attempts=s.max_attempts, window=s.attempt_window,
                                       client=client)
        if result.outcome is VerifyOutcome.THROTTLED:
            raise Throttled(key="throttled.ip", retry_after=result.retry_after)
        if result.outcome is VerifyOutcome.OK:
            self._signal(code_verified, phone=e164, purpose=purpose)
            return VerifyResult(e164, purpose, self.tokens.issue(e164, purpose), s.token_ttl)
        error: SmsCodeError
        if result.outcome is VerifyOutcome.INVALID:
            error = InvalidCode(attempts_left=result.attempts_left)
            event["attempts_left"] = result.attempts_left
        elif result.outcome is VerifyOutcome.EXPIRED:
            error = CodeExpired()
        else:
            error = TooManyAttempts(retry_after=max(1, result.retry_after))
        self._signal(verification_failed, phone=e164, purpose=purpose, reason=error.code)
        raise error

    # -- tokens --------------------------------------------------------------------------
    def check_token(self, token: str, purpose: str | None = None, *, phone: str | None = None,
                    consume: bool = True) -> VerifiedPhone:
        """Return what ``token`` proves, or raise :class:`InvalidToken`.

        ``purpose`` (and ``phone``, any spelling) must match when given. With ``consume``
        (the default) the token works once; pass ``False`` to peek without using it.
        """
        verified = self.tokens.load(token)
        if purpose is not None and verified.purpose != purpose:
            raise InvalidToken(key="invalid_token.purpose")
        if phone is not None:
            try:
                same = self.normalize(phone) == verified.phone
            except SmsCodeError:
                same = False
            if not same:
                raise InvalidToken(key="invalid_token.phone")
        if consume and not self.store.use_token(verified.token_id, self.tokens.max_age):
            raise InvalidToken(key="invalid_token.used")
        if not consume and self.store.token_used(verified.token_id):
            raise InvalidToken(key="invalid_token.used")
        return verified

    # -- operators -----------------------------------------------------------------------
    def status(self, phone: str, purpose: str = "login") -> PhoneStatus:
        return self.store.status(self.normalize(phone), self.check_purpose(purpose),
                                 limits=self.settings.phone_limits)

    def reset(self, phone: str, purpose: str | None = None) -> int:
        """Clear codes, failures (of ``purpose``, or all purposes) and throttles of a phone."""
        purposes = self.settings.purposes if purpose is None else (self.check_purpose(purpose),)
        return self.store.reset(self.normalize(phone), purposes,
                                limits=self.settings.phone_limits)

    @staticmethod
    def _signal(signal: Any, **kwargs: Any) -> None:
        """Notify receivers. A failing receiver is logged, not raised: the SMS has gone out
        (or the code is used up), and the client must hear so."""
        try:
            app = current_app._get_current_object()  # type: ignore[attr-defined]
        except RuntimeError:  # used outside an app context: nobody to send as
            return
        try:
            signal.send(app, **kwargs)
        except Exception as exc:
            logger.error("smscode signal %s: a receiver raised %s", signal.name,
                         type(exc).__name__, exc_info=exc)


class SmsCode:
    """The extension object, for app factories::

        smscode = SmsCode()
        def create_app():
            app = Flask(__name__); app.config.from_object(...)
            smscode.init_app(app)          # Python API only
            app.register_blueprint(sms_bp)  # plus the HTTP endpoints
    """

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> SmsCodeService:
        return init_app(app)

    # The Python API, through current_app (the same as the module-level functions).
    def send_code(self, phone: str, purpose: str = "login", **kwargs: Any) -> SendResult:
        return send_code(phone, purpose, **kwargs)

    def verify_code(self, phone: str, code: str, purpose: str = "login",
                    **kwargs: Any) -> VerifyResult:
        return verify_code(phone, code, purpose, **kwargs)

    def check_token(self, token: str, purpose: str | None = None,
                    **kwargs: Any) -> VerifiedPhone:
        return check_token(token, purpose, **kwargs)


def init_app(app: Flask) -> SmsCodeService:
    """Validate the app's settings and build its service (once per app)."""
    service = app.extensions.get(EXTENSION_KEY)
    if service is None:
        service = SmsCodeService(app.config, debug=app.debug, testing=app.testing)
        app.extensions[EXTENSION_KEY] = service
    return service


def get_service(app: Flask | None = None) -> SmsCodeService:
    """The service of ``app`` (default: the current app)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    service = app.extensions.get(EXTENSION_KEY)
    if service is None:
        raise RuntimeError("flask-smscode is not set up on this app: register sms_bp or call "
                           "SmsCode().init_app(app) first.")
    return service


def send_code(phone: str, purpose: str = "login", *, client_ip: str | None = None) -> SendResult:
    """Send a code to ``phone`` for ``purpose`` in the current app; see :class:`SendResult`."""
    return get_service().send(phone, purpose, client_ip=client_ip)


def verify_code(phone: str, code: str, purpose: str = "login", *,
                client_ip: str | None = None) -> VerifyResult:
    """Verify and consume ``code``; returns the verified-phone token."""
    return get_service().verify(phone, code, purpose, client_ip=client_ip)


def check_token(token: str, purpose: str | None = None, *, phone: str | None = None,
                consume: bool = True) -> VerifiedPhone:
    """Check (and by default use up) a verified-phone token from ``/sms/verify``."""
    return get_service().check_token(token, purpose, phone=phone, consume=consume)
