"""The decisions: send (normalise, gate, generate, store, send, settle) and verify.

One :class:`SmsCodeService` exists per Flask app, in ``app.extensions["smscode"]``; it
holds no reference to the app and names no vendor: the sender registry builds whatever
``SMSCODE_SENDER`` names. Every send and verify ends in one immutable
:class:`~flask_smscode.events.Outcome` (returned with the result, or attached to the raised
error as ``exc.outcome``) that :func:`~flask_smscode.events.observe` logs, counts and
signals, in one place.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import logging
import time
import warnings
from collections.abc import Mapping
from typing import Any

from flask import has_request_context, request

from flask_smscode.codes import code_digest, generate_code, is_well_formed
from flask_smscode.core.deliveries import Deliveries
from flask_smscode.core.idempotency import (
    answer_of_error,
    check_key,
    error_for,
    fingerprint,
    key_id,
    log_id,
)
from flask_smscode.core.limiter_adapter import FlaskLimiterAdapter
from flask_smscode.core.outids import OutIds
from flask_smscode.core.ratelimit import client_key
from flask_smscode.core.replies import Replies
from flask_smscode.core.results import SendResult, VerifyResult
from flask_smscode.core.settings import AppSettings, idempotency_times
from flask_smscode.core.suppression import Suppression
from flask_smscode.core.tracing import tracer
from flask_smscode.errors import (
    ChallengeRequired,
    CodeExpired,
    IdempotencyKeyReused,
    InvalidCode,
    InvalidPhone,
    InvalidRequest,
    InvalidToken,
    ProviderError,
    RequestInProgress,
    SmsCodeError,
    StorageUnavailable,
    Throttled,
    TooManyAttempts,
)
from flask_smscode.events import Outcome, log_event, observe
from flask_smscode.metrics import GUARD_LIMITS, SENDERS, STATS
from flask_smscode.phones import mask_phone, normalize_phone, normalize_phone_fast
from flask_smscode.senders import DeliveryUnconfirmed, Sender, build_sender
from flask_smscode.senders.base import send_seconds
from flask_smscode.stores import (
    ClientLimits,
    GuardRequest,
    IdempotencyRequest,
    PhoneStatus,
    PrefixStatus,
    Refusal,
    SendDecision,
    Store,
    StoredAnswer,
    VerifyOutcome,
    store_from_uri,
)
from flask_smscode.tokens import TokenSigner, VerifiedPhone

__all__ = ["REFUSAL_KEYS", "SendResult", "SmsCodeService", "VerifyResult"]

logger = logging.getLogger("flask_smscode")
_POLL_SECONDS = 0.05  # how often a duplicate of a running Idempotency-Key looks for its answer
# The message of a refusal by the store, per refusal kind. The guard's refusals share one
# sentence that names no reason: an attacker learns nothing about which budget tripped.
REFUSAL_KEYS = {
    "client": "throttled.ip",
    "phone": "throttled.cooldown",
    "global": "throttled.guard",
    "prefix": "throttled.guard",
    "blocked": "throttled.guard",
    "conversion": "throttled.guard",
    "source": "throttled.guard",
}
_GUARD_NOTICES = {
    Refusal.GLOBAL: "global_budget_exhausted",
    Refusal.PREFIX: "prefix_budget_exhausted",
    Refusal.CONVERSION: "prefix_blocked",
}


class SmsCodeService:
    """Per-app state: validated settings, the store, the sender, the IP limiter."""

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        debug: bool = False,
        testing: bool = False,
        sections: AppSettings | None = None,
    ) -> None:
        sections = sections or AppSettings.from_config(config or {})
        self.sections = sections
        self.settings = s = sections.core
        STATS.allow_purposes(s.purposes)  # metric labels and logs name only these purposes
        relaxed = debug or testing
        if s.storage_uri.startswith("memory") and not relaxed:
            warnings.warn(
                "flask-smscode is using the in-memory store (SMSCODE_STORAGE_URI = "
                "'memory://'): each worker process keeps its own codes and throttles, so a "
                "code sent through one gunicorn worker fails on another and every limit is "
                "multiplied by the number of workers. Set SMSCODE_STORAGE_URI to a "
                "redis:// URI in production.",
                UserWarning,
                stacklevel=3,
            )
        # With SMSCODE_SENDER_ROUTES, SMSCODE_SENDER may be left at its default: the routes
        # name the senders (the console one warns only when a route names it).
        routed = sections.config.get("SMSCODE_SENDER_ROUTES") is not None
        if s.sender == "console" and not relaxed and not routed:
            warnings.warn(
                "flask-smscode is using the console sender: no SMS is sent. Set "
                "SMSCODE_SENDER to a real provider in production.",
                UserWarning,
                stacklevel=3,
            )
        self.store: Store = store_from_uri(
            s.storage_uri,
            key_prefix=s.key_prefix,
            timeout=s.storage_timeout,
            **s.durability_options(),
            **s.storage_options,
        )
        # OpenTelemetry spans when it is installed (looked up once here), else no-ops.
        self.tracing = tracer()
        # Several senders fail over in order; their names label logs, metrics and status.
        self.sender: Sender
        self.sender, self.sender_names = build_sender(
            sections.config, show_code=relaxed, purposes=s.purposes
        )
        SENDERS.allow(self.sender_names)
        # Per-IP limits: counted by the store inside the send/verify decision (one round
        # trip), or by the app's Flask-Limiter when SMSCODE_RATELIMIT_BACKEND says so.
        limits = sections.ratelimit
        self.flask_limiter: FlaskLimiterAdapter | None = None
        if limits.backend == "flask-limiter":
            self.flask_limiter = FlaskLimiterAdapter(
                send=limits.send_text, verify=limits.verify_text
            )
        self.ip_limits: dict[str, tuple[Any, ...]] = {"send": limits.send, "verify": limits.verify}
        self.messages = sections.messages  # answers in the client's language
        # Separate keys for the code HMAC and the token signature, both from the app secret.
        self._hash_key = hmac.new(s.secret, b"flask-smscode code hash", hashlib.sha256).digest()
        self.out_ids = OutIds(s.secret)  # OutIds of code sends (delivery reports)
        self.reports = sections.reports
        self.report_channels = sections.channels  # every vendor's receiver (web/reports.py)
        self.deliveries = Deliveries(
            self.store,
            sections.reports,
            self.out_ids,
            enabled=any(c.enabled for c in sections.channels.values()),
        )
        # Replies and the suppression list (core/replies.py): notifications skip listed
        # numbers; codes only with SMSCODE_SUPPRESS_CODES.
        self.suppression = Suppression(self.store, suppress_codes=sections.replies.suppress_codes)
        self.replies = Replies(
            self.store, sections.replies, self.suppression, ttl_ms=sections.reports.ttl_ms
        )
        self.tokens = TokenSigner(s.secret, s.token_ttl)
        self.guard = sections.guard  # the SMS-pumping guard
        GUARD_LIMITS.set((limit.seconds, limit.amount) for limit in self.guard.global_limits)
        self.deliveries.guard = self.guard  # receipts teach the guard (dead numbers)
        self._idempotency_key = hmac.new(
            s.secret, b"flask-smscode idempotency", hashlib.sha256
        ).digest()
        self.idempotency_wait, self._claim_ms = idempotency_times(
            sections.idempotency_wait, send_seconds(self.sender), s.storage_timeout
        )

    # -- inputs --------------------------------------------------------------------------
    def check_purpose(self, purpose: object) -> str:
        """``purpose`` if configured; ``None`` means ``login`` (which must be configured too)."""
        if purpose is None:
            purpose = "login"
        if not isinstance(purpose, str) or purpose not in self.settings.purposes:
            raise InvalidRequest(
                key="invalid_request.purpose",
                params={"purposes": ", ".join(self.settings.purposes)},
                field="purpose",
            )
        return purpose

    def normalize(self, phone: object) -> str:
        """E.164 form of ``phone`` under this app's region settings."""
        if phone is None or phone == "":
            raise InvalidRequest(key="invalid_request.required", field="phone")
        if not isinstance(phone, str):
            raise InvalidRequest(key="invalid_request.not_string", field="phone")
        s = self.settings
        # The usual spellings (13800138000, +8613800138000) skip phonenumbers' pure-Python
        # parse, which cost more than the rest of a verify; the fast path decides exactly
        # as the full parse (tests/test_phones_fastpath.py) and leaves it everything else.
        return normalize_phone_fast(phone, s.default_region, s.allowed_regions) or normalize_phone(
            phone, s.default_region, s.allowed_regions
        )

    # -- send ----------------------------------------------------------------------------
    def send(
        self,
        phone: object,
        purpose: object = "login",
        *,
        client_ip: str | None = None,
        idempotency_key: str | None = None,
    ) -> SendResult:
        """Issue a code to ``phone`` for ``purpose`` (raises an :class:`SmsCodeError`).

        ``phone`` and ``purpose`` may be anything a client sent (the views pass JSON values
        as they came): they are validated here, and anything else is ``invalid_request``.

        With ``client_ip`` every request is counted against the client's per-IP limit,
        malformed ones included, so malformed floods spend the client's budget too. With
        ``idempotency_key`` a repeat of the same request gets the first answer
        (``result.replayed``, or the same error with ``exc.replayed``) and sends nothing.
        Every outcome is one log line.
        """
        started = time.monotonic()
        with self.tracing.span("smscode.send") as span:  # core/tracing.py
            try:
                result, outcome = self._send(phone, purpose, client_ip, idempotency_key)
            except SmsCodeError as exc:
                seen = _outcome_of(exc, "send", purpose)
                # The provider failing or the store down is the operator's business
                # (WARNING); throttled attackers and typos are routine (INFO).
                serious = isinstance(exc, (ProviderError, StorageUnavailable)) or seen.provider_code
                level = logging.WARNING if serious else logging.INFO
                observe(span.ended(_finished(seen, exc.code, level, started)))
                raise
            level = logging.WARNING if result.delivery == "unconfirmed" else logging.INFO
            observe(span.ended(_finished(outcome, outcome.outcome, level, started)))
            return result

    def _send(
        self,
        phone: object,
        purpose: object,
        client_ip: str | None,
        idempotency_key: str | None = None,
    ) -> tuple[SendResult, Outcome]:
        s = self.settings
        client = self._client_limits("send", client_ip)
        with self._counted_if_refused("send", client):
            purpose = self.check_purpose(purpose)
            e164 = self.normalize(phone)
            if idempotency_key is not None:
                check_key(idempotency_key)
            if self.suppression.blocks_codes(e164):  # only with SMSCODE_SUPPRESS_CODES
                raise InvalidPhone(key="invalid_phone.unsubscribed")
        seen = Outcome("send", "sent", phone=e164, purpose=purpose)
        try:
            # The per-IP hit first, then the hook: a captcha's remote verifier is called at
            # most at the client's budget's rate, never at the attacker's.
            client = self._counted_before_hook(client, seen)
            self._pre_send_check(e164, purpose, seen)  # before anything else is counted or sent
            guard = self.guard.request(e164, self._guard_source(client_ip))
            idem = self._idempotency_request(idempotency_key, e164, purpose)
            if idem is not None:
                seen = seen._replace(idempotency_key=log_id(idem.key_id))  # never the key
            fixed = s.test_numbers.get(e164)
            code = fixed or generate_code(s.code_length)
            # Also the OutId of the provider call: 16 characters that tell a delivery report
            # of this send from anything else (time + HMAC tag, see core/outids.py).
            send_id = self.out_ids.new(e164)
            seen = seen._replace(out_id=send_id)
            decision = self._reserve(
                e164, purpose, self._hash(e164, purpose, code), send_id, client, guard, idem
            )
            if decision.idempotency is not None and decision.idempotency.answer is not None:
                return self._replay(decision.idempotency.answer, e164, purpose, seen)
            if decision.refused_by is not None:
                raise self._refused(decision, guard, seen)
            if decision.would_block is not None:  # shadow mode: logged, counted, sent
                seen = self._would_block(decision, guard, seen)
            if fixed is not None:  # a test number: every rule above applied, no SMS goes out
                delivery = "sent"
                seen = seen._replace(outcome="test_number", signal="code_sent", delivery="test")
            else:
                try:
                    delivery, seen = self._deliver(e164, code, purpose, send_id, seen, guard)
                except SmsCodeError as exc:
                    self._settle_idempotency(idem, exc)
                    raise
        except SmsCodeError as exc:
            if exc.outcome is None:
                exc.outcome = seen
            raise
        self._settle_idempotency(
            idem, StoredAnswer(200, "ok", delivery, s.code_ttl, s.resend_interval)
        )
        return SendResult(e164, purpose, s.code_ttl, s.resend_interval, delivery), seen

    # -- the pumping guard and idempotency --------------------------------------------------
    def _counted_before_hook(
        self, client: ClientLimits | None, seen: Outcome
    ) -> ClientLimits | None:
        """With a pre-send hook, count the client's per-IP hit first (a round trip of its
        own, only for apps with a hook) and raise Throttled past the budget, so a client
        over it never reaches the hook; the store's decision then counts nothing more for
        the client (``None``). Without a hook the hit stays folded into the decision."""
        if client is None or self.guard.pre_send_hook is None:
            return client
        wait = self.store.hit_client("send", client)
        if wait:
            error = Throttled(key="throttled.ip", retry_after=wait)
            error.outcome = seen
            raise error
        return None

    def _pre_send_check(self, e164: str, purpose: str, seen: Outcome) -> None:
        """SMSCODE_PRE_SEND_HOOK (captcha, risk check): it sees the request and the
        normalised phone once the request is counted against its client's per-IP budget
        (a client past it hears 429 and never reaches the hook) and before anything else
        is counted, stored or sent; it refuses by raising ChallengeRequired or returning
        False (counted as the guard's "challenge")."""
        hook = self.guard.pre_send_hook
        if hook is None:
            return
        refusal: ChallengeRequired | None = None
        try:
            allowed = hook(request if has_request_context() else None, e164, purpose)
        except ChallengeRequired as exc:
            refusal = exc
        else:
            refusal = ChallengeRequired() if allowed is False else None
        if refusal is not None:
            refusal.outcome = seen._replace(guard="challenge")
            raise refusal

    def _idempotency_request(
        self, key: str | None, e164: str, purpose: str
    ) -> IdempotencyRequest | None:
        if key is None:
            return None
        return IdempotencyRequest(
            key_id(self._idempotency_key, key),
            fingerprint(self._idempotency_key, e164, purpose),
            ttl_ms=self.settings.code_ttl * 1000,
            pending_ms=self._claim_ms,
        )

    def _reserve(
        self,
        e164: str,
        purpose: str,
        code_hash: str,
        send_id: str,
        client: ClientLimits | None,
        guard: GuardRequest | None,
        idem: IdempotencyRequest | None,
    ) -> SendDecision:
        """The store's decision; a duplicate of a running Idempotency-Key waits (polling)
        for its first request's answer, at most ``idempotency_wait`` seconds, then 409."""
        s = self.settings
        deadline = time.monotonic() + self.idempotency_wait
        while True:
            decision = self.store.reserve_send(
                e164,
                purpose,
                code_hash,
                send_id,
                ttl=s.code_ttl,
                cooldown=s.resend_interval,
                limits=s.phone_limits,
                client=client,
                guard=guard,
                idempotency=idem,
            )
            known = decision.idempotency
            if known is None or known.kind == "replay":
                return decision
            if known.kind == "reused":
                raise IdempotencyKeyReused()
            if idem is None or not self._wait_for_answer(idem, deadline):
                raise RequestInProgress(retry_after=min(10, max(1, -(-known.wait_ms // 1000))))

    def _wait_for_answer(self, idem: IdempotencyRequest, deadline: float) -> bool:
        """Poll until the key's first request has answered (or released it)."""
        while time.monotonic() < deadline:
            time.sleep(_POLL_SECONDS)
            state = self.store.peek_idempotency(idem)
            if state is None or state.kind != "pending":
                return True
        return False

    def _settle_idempotency(
        self, idem: IdempotencyRequest | None, outcome: StoredAnswer | SmsCodeError
    ) -> None:
        """Record the key's answer, or release the key after a fault that sent nothing.
        The SMS (or the refusal) stands even if the store fails here: logged, not raised."""
        if idem is None:
            return
        try:
            if isinstance(outcome, (ProviderError, StorageUnavailable)):
                self.store.release_idempotency(idem)
            elif isinstance(outcome, SmsCodeError):
                self.store.finish_idempotency(idem, answer_of_error(outcome))
            else:
                self.store.finish_idempotency(idem, outcome)
        except StorageUnavailable:
            log_event(
                logging.WARNING,
                "send.idempotency",
                outcome="storage_unavailable",
                idempotency_key=log_id(idem.key_id),
            )

    def _replay(
        self, answer: StoredAnswer, e164: str, purpose: str, seen: Outcome
    ) -> tuple[SendResult, Outcome]:
        seen = seen._replace(replayed=True)
        if answer.code != "ok":
            error = error_for(answer, REFUSAL_KEYS.get)
            error.outcome = seen
            raise error
        result = SendResult(
            e164, purpose, answer.n1 or 0, answer.n2 or 0, answer.key or "sent", replayed=True
        )
        return result, seen._replace(outcome="replayed")

    def _refused(
        self, decision: SendDecision, guard: GuardRequest | None, seen: Outcome
    ) -> Throttled:
        """The 429 of a store refusal; the guard's are counted, and logged at WARNING once
        per window (a budget) or when a prefix gets blocked."""
        kind = decision.refused_by
        assert kind is not None
        error = Throttled(key=REFUSAL_KEYS[kind.value], retry_after=decision.retry_after)
        if kind in (Refusal.CLIENT, Refusal.PHONE):
            return error
        error.outcome = seen._replace(guard=kind.value)  # counted by observe()
        if decision.notice or kind is Refusal.CONVERSION:
            log_event(
                logging.WARNING,
                "guard",
                outcome=_GUARD_NOTICES.get(kind, kind.value),
                prefix=guard.prefix if guard is not None and kind is not Refusal.GLOBAL else None,
                retry_after=decision.retry_after,
            )
        return error

    def _guard_source(self, client_ip: str | None) -> str | None:
        """The source tag the guard weighs for this request (core/guard.py)."""
        return self.guard.source_tag(
            request if has_request_context() else None,
            client_key(client_ip) if client_ip is not None else None,
        )

    def _would_block(
        self, decision: SendDecision, guard: GuardRequest | None, seen: Outcome
    ) -> Outcome:
        """Shadow mode: the guard would have refused this send. One ``guard`` line with
        ``would_block`` (WARNING when enforce mode would warn, else INFO) and the outcome's
        guard label ``would_block_<reason>`` (counted by observe()); the SMS goes out."""
        kind = decision.would_block
        assert kind is not None
        log_event(
            logging.WARNING if kind is Refusal.CONVERSION else logging.INFO,
            "guard",
            outcome="would_block",
            would_block=kind.value,
            prefix=guard.prefix if guard is not None and kind is not Refusal.GLOBAL else None,
        )
        return seen._replace(guard=f"would_block_{kind.value}")

    def guard_status(self) -> tuple[dict[str, int], list[PrefixStatus]]:
        """The global budget's counts and every number prefix the guard holds state for."""
        g = self.guard
        return self.store.guard_status(
            g.global_limits, g.prefix_limits, g.window * 1000 if g.converts else 0
        )

    def guard_unblock(self, prefix: str) -> bool:
        return self.store.guard_unblock(prefix)

    def _deliver(
        self,
        phone: str,
        code: str,
        purpose: str,
        send_id: str,
        seen: Outcome,
        guard: GuardRequest | None = None,
    ) -> tuple[str, Outcome]:
        """Hand the code to the sender and settle the reservation by the outcome.

        A definite refusal cancels the reservation (no live code, cooldown given back); an
        unknown outcome keeps both, because the SMS may arrive. With several senders the
        failover happened inside ``self.sender``: one reservation, settled once here.
        """
        failure: SmsCodeError
        try:
            with self.tracing.provider(phone, purpose) as span:  # core/tracing.py
                receipt = self.sender.send(phone, code, purpose, out_id=send_id)
                span.sent(receipt.sender)
        except DeliveryUnconfirmed as exc:
            name = self._carried_by(exc.sender, phone, purpose, send_id)
            return "unconfirmed", seen._replace(
                outcome="unconfirmed",
                provider_code=exc.provider_code,
                request_id=exc.request_id,
                sender=name,
                sender_outcome="unconfirmed",
                signal="code_sent",
                delivery="unconfirmed",
            )
        except SmsCodeError as exc:
            failure = exc
            # A sender puts the provider's code and request id on the error it raises
            # (SmsCodeError.with_provider); None when the refusal is not the provider's.
            seen = seen._replace(
                provider_code=exc.provider_code,
                request_id=exc.request_id,
                sender=self._sender_name(exc.sender),
            )
        except Exception as exc:  # a custom sender's bug; its text may hold the code
            failure = ProviderError()
            seen = seen._replace(exception=type(exc).__name__, sender=self._sender_name(None))
        else:
            name = self._carried_by(receipt.sender, phone, purpose, send_id)
            if self.deliveries.enabled:
                self._record_sent(phone, send_id, receipt.biz_id)
            return "sent", seen._replace(
                provider_code=receipt.provider_code,
                request_id=receipt.request_id,
                sender=name,
                sender_outcome="sent",
                signal="code_sent",
                delivery="sent",
            )
        self._cancel(phone, purpose, send_id, guard)
        failure.outcome = seen._replace(sender_outcome="failed")
        raise failure  # outside the except blocks: no chained sender exception

    def _record_sent(self, phone: str, send_id: str, biz_id: str | None) -> None:
        """Delivery reports on: keep the BizId so a report without our OutId still finds
        its send (BizId + phone). The SMS is out whatever the store says."""
        try:
            self.deliveries.record_sent(phone, send_id, biz_id)
        except StorageUnavailable:
            log_event(
                logging.WARNING,
                "send.report",
                phone=mask_phone(phone),
                outcome="storage_unavailable",
            )

    def _sender_name(self, reported: str | None) -> str:
        """The configured name of the sender that answered (one sender: its name always)."""
        names = self.sender_names
        return reported if len(names) > 1 and reported in names else names[0]

    def _carried_by(self, reported: str | None, phone: str, purpose: str, send_id: str) -> str:
        """The name of the sender that carried the code; a sender other than the first is
        written to the store (one more round trip, after a failover only)."""
        name = self._sender_name(reported)
        index = self.sender_names.index(name)
        if index:
            try:
                self.store.record_sender(phone, purpose, send_id, index)
            except StorageUnavailable:  # the SMS is out: status just shows the first sender
                log_event(
                    logging.WARNING,
                    "send.sender",
                    phone=mask_phone(phone),
                    purpose=purpose,
                    sender=name,
                    outcome="storage_unavailable",
                )
        return name

    def _cancel(
        self, phone: str, purpose: str, send_id: str, guard: GuardRequest | None = None
    ) -> None:
        try:
            self.store.cancel_send(
                phone, purpose, send_id, limits=self.settings.phone_limits, guard=guard
            )
        except StorageUnavailable:
            # The code was never delivered, so leaving it is harmless; it expires with its TTL.
            log_event(
                logging.WARNING,
                "send.cancel",
                phone=mask_phone(phone),
                purpose=purpose,
                outcome="storage_unavailable",
            )

    def _hash(self, phone: str, purpose: str, code: str) -> str:
        # 96 bits of the HMAC in base64 (16 characters): a wrong code matches by chance
        # with probability 2**-96, and the field stays short enough for Redis' compact
        # hash encoding (see stores/lua/common.lua).
        digest = code_digest(self._hash_key, phone, purpose, code)[:12]
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

    def count_request(self, endpoint: str, client_ip: str | None) -> None:
        """Count a request refused before the service saw its fields (an unreadable body)
        against its client's per-IP limit; raise Throttled when the client is over it."""
        client = self._client_limits(endpoint, client_ip)
        if client is not None:
            wait = self.store.hit_client(endpoint, client)
            if wait:
                raise Throttled(key="throttled.ip", retry_after=wait)

    def _counted_if_refused(self, endpoint: str, client: ClientLimits | None) -> _CountedIfRefused:
        """A request refused before it reaches the store still spends its client's budget
        (in a round trip of its own), so malformed floods are limited like any other; a
        client over its limit hears 429 rather than the validation error."""
        return _CountedIfRefused(self.store, endpoint, client)

    # -- verify --------------------------------------------------------------------------
    def verify(
        self,
        phone: object,
        code: object,
        purpose: object = "login",
        *,
        client_ip: str | None = None,
    ) -> VerifyResult:
        """Check ``code``; on success consume it and return a verified-phone token (the
        fields are validated here, like :meth:`send`'s)."""
        started = time.monotonic()
        with self.tracing.span("smscode.verify") as span:  # core/tracing.py
            try:
                result, outcome = self._verify(phone, code, purpose, client_ip)
            except SmsCodeError as exc:
                level = logging.WARNING if isinstance(exc, StorageUnavailable) else logging.INFO
                seen = _outcome_of(exc, "verify", purpose)
                observe(span.ended(_finished(seen, exc.code, level, started)))
                raise
            observe(span.ended(_finished(outcome, "verified", logging.INFO, started)))
            return result

    def _verify(
        self,
        phone: object,
        code: object,
        purpose: object,
        client_ip: str | None,
    ) -> tuple[VerifyResult, Outcome]:
        s = self.settings
        client = self._client_limits("verify", client_ip)
        seen: Outcome | None = None
        try:
            with self._counted_if_refused("verify", client):
                purpose = self.check_purpose(purpose)
                e164 = self.normalize(phone)
                seen = Outcome("verify", "verified", phone=e164, purpose=purpose)
                if code is None or code == "":
                    raise InvalidRequest(key="invalid_request.required", field="code")
                if not isinstance(code, str):
                    raise InvalidRequest(key="invalid_request.not_string", field="code")
                if not is_well_formed(code, s.code_length):
                    raise InvalidRequest(
                        key="invalid_request.code_format",
                        params={"length": s.code_length},
                        field="code",
                    )
            result = self.store.check_code(
                e164,
                purpose,
                self._hash(e164, purpose, code),
                max_attempts=s.max_attempts,
                window=s.attempt_window,
                client=client,
                guard=self.guard.request(e164, self._guard_source(client_ip))
                if self.guard.converts
                else None,
            )
        except SmsCodeError as exc:
            if exc.outcome is None:
                exc.outcome = seen
            raise
        if result.outcome is VerifyOutcome.THROTTLED:
            error: SmsCodeError = Throttled(key="throttled.ip", retry_after=result.retry_after)
            error.outcome = seen
            raise error
        if result.outcome is VerifyOutcome.OK:
            token = self.tokens.issue(e164, purpose)
            return VerifyResult(e164, purpose, token, s.token_ttl), seen._replace(
                signal="code_verified",
                # Conversion per vendor: exact with one sender; with several, which one
                # carried this code is not known without another round trip ("other").
                credited_sender=self.sender_names[0] if len(self.sender_names) == 1 else None,
            )
        attempts_left = None
        if result.outcome is VerifyOutcome.INVALID:
            error = InvalidCode(attempts_left=result.attempts_left)
            attempts_left = result.attempts_left
        elif result.outcome is VerifyOutcome.EXPIRED:
            error = CodeExpired()
        else:
            error = TooManyAttempts(retry_after=max(1, result.retry_after))
        error.outcome = seen._replace(
            signal="verification_failed", reason=error.code, attempts_left=attempts_left
        )
        raise error

    # -- tokens --------------------------------------------------------------------------
    def check_token(
        self,
        token: str,
        purpose: str | None = None,
        *,
        phone: str | None = None,
        consume: bool = True,
    ) -> VerifiedPhone:
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
        """The phone's state; ``sender`` names who carried the live code (failover)."""
        e164, purpose = self.normalize(phone), self.check_purpose(purpose)
        snapshot = self.store.status(e164, purpose, limits=self.settings.phone_limits)
        if not snapshot.out_id:
            return snapshot
        names = self.sender_names
        index = self.store.sender_of(e164, purpose, snapshot.out_id) if len(names) > 1 else 0
        return dataclasses.replace(snapshot, sender=names[index if index < len(names) else 0])

    def reset(self, phone: str, purpose: str | None = None) -> int:
        """Clear codes, failures (of ``purpose``, or all purposes) and throttles of a phone."""
        purposes = self.settings.purposes if purpose is None else (self.check_purpose(purpose),)
        return self.store.reset(self.normalize(phone), purposes, limits=self.settings.phone_limits)


class _CountedIfRefused:
    """The context manager of :meth:`SmsCodeService._counted_if_refused` (a class: a
    generator-based one costs every send and verify a generator and its frames)."""

    __slots__ = ("client", "endpoint", "store")

    def __init__(self, store: Store, endpoint: str, client: ClientLimits | None) -> None:
        self.store, self.endpoint, self.client = store, endpoint, client

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if not isinstance(exc, SmsCodeError) or self.client is None:
            return None
        wait = self.store.hit_client(self.endpoint, self.client)
        if wait:
            throttled = Throttled(key="throttled.ip", retry_after=wait)
            throttled.outcome = exc.outcome
            raise throttled from None
        return None


def _outcome_of(exc: SmsCodeError, event: str, purpose: object) -> Outcome:
    """The outcome attached to ``exc``, or what is known of a request refused before its
    phone was read (a purpose is logged only as a label, see events.py)."""
    if isinstance(exc.outcome, Outcome):
        return exc.outcome
    return Outcome(event, exc.code, purpose=purpose if isinstance(purpose, str) else None)


def _finished(outcome: Outcome, result: str, level: int, started: float) -> Outcome:
    return outcome._replace(
        outcome=result,
        level=level,
        latency_ms=round((time.monotonic() - started) * 1000, 1),
    )
