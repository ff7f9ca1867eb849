"""What a store decides, and the key layout shared by every store.

A store makes the two decisions that must be atomic — "may this phone get a code now"
(cooldown and caps, together with storing the code) and "is this code right" (together
with counting the attempt and consuming the code) — plus the per-client (IP) limits and
single-use token bookkeeping.

Layout (Redis; ``memory://`` mirrors it): one hash per phone, ``<prefix>:{+8613800138000}``,
whose fields carry their own expiry (``c:<purpose>`` the code, ``p:<purpose>`` the code
it replaced, ``f:<purpose>`` failures, ``cd`` the cooldown, ``n`` the send counters); one
hash per client,
``<prefix>:ip:{<address or /64>}``; one string per used token, ``<prefix>:token:<id>``.
The ``{hash tag}`` keeps every key of one phone in one Redis Cluster slot.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from flask_smscode.config import Limit


class VerifyOutcome(enum.Enum):
    """Result kinds of :meth:`Store.check_code`."""

    OK = "ok"
    INVALID = "invalid"  # wrong code; attempts_left says how many remain
    EXPIRED = "expired"  # no live code for this phone and purpose
    LOCKED = "locked"  # too many failures in the window; retry_after says for how long
    THROTTLED = "client"  # the client's per-IP verify limit; retry_after says for how long


class Refusal(enum.Enum):
    """Who refused a send: the client's per-IP limit, the phone's cooldown and caps, or the
    pumping guard (the global budget, the number prefix's budget, a prefix blocked for low
    conversion, or blocked by this very request)."""

    CLIENT = "client"
    PHONE = "phone"
    GLOBAL = "global"  # SMSCODE_GLOBAL_SEND_LIMITS
    PREFIX = "prefix"  # SMSCODE_PREFIX_SEND_LIMITS
    BLOCKED = "blocked"  # the prefix is blocked (low conversion), still cooling off
    CONVERSION = "conversion"  # this request found the conversion too low and blocked it
    # This request's source (address, /64 or the app's key) spent its own budget of
    # unverified sends to the prefix: refused alone, the prefix stays open (core/guard.py).
    SOURCE = "source"


@dataclass(frozen=True)
class VerifyResult:
    outcome: VerifyOutcome
    attempts_left: int
    retry_after: int = 0


@dataclass(frozen=True)
class StoredAnswer:
    """The answer recorded under an idempotency key, compact enough for one hash field.

    ``code`` is ``"ok"`` for a 200 (then ``key`` is the delivery, ``n1``/``n2`` expires_in
    and resend_in), else the error code, ``key`` the message key's variant (``cooldown`` for
    ``throttled.cooldown``, ``""`` for the base sentence, ``r:<refusal>`` for a store
    refusal) and ``n1`` the retry_after.
    """

    status: int
    code: str
    key: str = ""
    n1: int | None = None
    n2: int | None = None


@dataclass(frozen=True)
class IdempotencyState:
    """What an Idempotency-Key already holds: ``reused`` (another request body),
    ``pending`` (its first request is still running; ``wait_ms`` left on its claim) or
    ``replay`` (``answer`` is the first request's answer)."""

    kind: str
    answer: StoredAnswer | None = None
    wait_ms: int = 0


@dataclass(frozen=True)
class SendDecision:
    """``refused_by`` is ``None`` when the send was reserved, else who refused and for how long.

    ``notice`` is true for the first refusal of a guard budget in its window (log it once),
    ``idempotency`` is set when the request's Idempotency-Key was already known (then
    nothing was counted or reserved). ``would_block``: the guard in shadow mode
    (``SMSCODE_GUARD_MODE = "shadow"``) would have refused this reserved send.
    """

    refused_by: Refusal | None = None
    retry_after: int = 0
    notice: bool = False
    idempotency: IdempotencyState | None = None
    would_block: Refusal | None = None

    @property
    def reserved(self) -> bool:
        return self.refused_by is None and self.idempotency is None


@dataclass(frozen=True)
class GuardRequest:
    """The pumping guard's part of one send: the budgets to count and, per number prefix,
    the conversion guard's thresholds (``window_ms`` 0 turns the conversion guard off)."""

    global_limits: Sequence[Limit] = ()
    prefix: str | None = None
    prefix_limits: Sequence[Limit] = ()
    window_ms: int = 0
    min_sends: int = 0
    ratio_permille: int = 0
    block_ms: int = 0
    # Who is behind the sends (core/guard.py): ``source`` is the request's source tag
    # (None: unknown, the prefix rule then weighs no sources); a prefix is blocked for
    # everyone only with ``min_sources`` distinct sources behind its unverified sends (0:
    # any), and one source may leave ``source_sends`` unverified sends in it (0: no budget).
    source: str | None = None
    min_sources: int = 0
    source_sends: int = 0
    shadow: bool = False  # decide, log and count, but refuse nothing

    @property
    def counts_prefix(self) -> bool:
        return self.prefix is not None and (bool(self.prefix_limits) or self.window_ms > 0)


@dataclass(frozen=True)
class IdempotencyRequest:
    """An Idempotency-Key as the store sees it: its HMAC (``key_id``), the fingerprint of the
    normalised request, how long an answer is kept and how long a running claim holds."""

    key_id: str
    fingerprint: str
    ttl_ms: int
    pending_ms: int


@dataclass(frozen=True)
class PrefixStatus:
    """The guard's state of one number prefix (``flask smscode guard status``)."""

    prefix: str
    sends: float  # sends in the sliding window
    verifies: float  # successful verifies in the sliding window
    blocked_for: int  # seconds left on a block, 0 if none
    counted: dict[str, int]  # prefix limit text -> sends counted in its window


@dataclass(frozen=True)
class ClientLimits:
    """The per-IP limits to count for one request: the client's key and its limits."""

    client: str
    limits: Sequence[Limit]


@dataclass(frozen=True)
class PhoneStatus:
    """A read-only snapshot of one phone and purpose, for operators (``flask smscode status``)."""

    code_ttl: int  # seconds left on the live code, 0 if none
    out_id: str | None  # OutId of the live code's SendSms call
    failures: int
    failures_ttl: int
    cooldown: int  # seconds until the next send is allowed
    sends: dict[str, int]  # limit text ("5 per 1 hour") -> sends counted in its window
    # Which sender of SMSCODE_SENDER carried the live code (failover); filled in by the
    # service, which knows the names (the store keeps an index: stores/lua/sender.lua).
    sender: str | None = None


class Keys:
    """Key names. Every key of one phone carries the phone as a ``{hash tag}``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def phone(self, phone: str) -> str:
        return f"{self.prefix}:{{{phone}}}"

    def client(self, client: str) -> str:
        return f"{self.prefix}:ip:{{{client}}}"

    def token(self, token_id: str) -> str:
        return f"{self.prefix}:token:{token_id}"

    def guard_global(self) -> str:
        """The global send budget: one hash (one slot) for the whole app."""
        return f"{self.prefix}:guard:{{global}}"

    def guard_prefix(self, prefix: str) -> str:
        return f"{self.prefix}:pfx:{{{prefix}}}"

    def idempotency(self, key_id: str) -> str:
        return f"{self.prefix}:idem:{{{key_id}}}"


class CodeStore(Protocol):
    """The storage backend contract; see :mod:`.memory` and :mod:`.redis`.

    Every method raises :class:`~flask_smscode.errors.StorageUnavailable` when the
    backend cannot be reached or answers too late, and then has changed nothing.
    """

    def reserve_send(
        self,
        phone: str,
        purpose: str,
        code_hash: str,
        send_id: str,
        *,
        ttl: int,
        cooldown: int,
        limits: Sequence[Limit],
        client: ClientLimits | None = None,
        guard: GuardRequest | None = None,
        idempotency: IdempotencyRequest | None = None,
    ) -> SendDecision:
        """Look up the Idempotency-Key (a known key decides alone), count the client's
        request, then atomically check cooldown, caps and the pumping guard; if clear,
        count the send everywhere, start the cooldown, store the code (replacing any older
        one) and claim the key. A refusal is recorded as the key's answer."""
        ...

    def finish_idempotency(self, request: IdempotencyRequest, answer: StoredAnswer) -> None:
        """Record the answer of the request that claimed the key."""
        ...

    def release_idempotency(self, request: IdempotencyRequest) -> None:
        """Drop a claim whose request sent nothing because of a fault (502, 503)."""
        ...

    def peek_idempotency(self, request: IdempotencyRequest) -> IdempotencyState | None:
        """What the key holds now, changing nothing (a waiting duplicate polls this)."""
        ...

    def guard_status(
        self, global_limits: Sequence[Limit], prefix_limits: Sequence[Limit], window_ms: int
    ) -> tuple[dict[str, int], list[PrefixStatus]]:
        """The global budget's counts and every number prefix the guard holds state for."""
        ...

    def guard_unblock(self, prefix: str) -> bool:
        """Lift a prefix's block and forget its conversion counts; ``False`` if it had none."""
        ...

    def guard_learn(self, prefix: str, window_ms: int) -> None:
        """A delivery report said the number is dead (does not exist, blocked, unreachable):
        count one more unverified send against the prefix's conversion (lua/learn.lua)."""
        ...

    def hit_client(self, endpoint: str, client: ClientLimits) -> int:
        """Count one request of ``client`` on ``endpoint`` ("send" or "verify") on its own;
        return 0 when allowed, else the seconds to wait."""
        ...

    def cancel_send(
        self,
        phone: str,
        purpose: str,
        send_id: str,
        *,
        limits: Sequence[Limit],
        guard: GuardRequest | None = None,
    ) -> None:
        """Undo a reservation the provider definitely rejected: drop its code and its
        cooldown (if still this send's) and give back the counted sends (the guard's too:
        a provider outage must not look like a prefix that never converts)."""
        ...

    def check_code(
        self,
        phone: str,
        purpose: str,
        code_hash: str,
        *,
        max_attempts: int,
        window: int,
        client: ClientLimits | None = None,
        guard: GuardRequest | None = None,
    ) -> VerifyResult:
        """Count the client's request, then atomically compare, count a failure or consume
        the code; a success counts as a conversion of the phone's prefix (``guard``)."""
        ...

    def use_token(self, token_id: str, ttl: int) -> bool:
        """Mark a token id used; ``False`` if it already was."""
        ...

    def token_used(self, token_id: str) -> bool:
        """Whether a token id was used (a peek: marks nothing)."""
        ...

    def status(self, phone: str, purpose: str, *, limits: Sequence[Limit]) -> PhoneStatus: ...

    def reset(self, phone: str, purposes: Sequence[str], *, limits: Sequence[Limit]) -> int:
        """Delete the phone's codes, failures (for ``purposes``), cooldown and send
        counters; return how many of them existed."""
        ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


ENDPOINT_FIELDS = {"send": "s", "verify": "v"}


# -- delivery reports (core/deliveries.py) -----------------------------------------------
# One more field in the phone's hash: ``d`` = ``expires|report_id|state|err_code``, the last
# delivery reported for the phone's code sends. ``report_id`` is the OutId without its tag
# (2 random + 8 time characters, see core/outids.py), ``state`` ``d`` (delivered) or ``f``
# (failed), ``err_code`` at most 40 characters: 62 bytes at most, so the hash stays listpack.
DELIVERY_FIELD = "d"
# "w": sent, no report yet; its err_code slot holds the send's BizId (written after the
# provider accepted the send, when the receiver is on), so a report without our OutId can
# still be matched by BizId + phone.
REPORT_STATES = {"d": "delivered", "f": "failed", "w": "waiting"}


@dataclass(frozen=True)
class LastDelivery:
    """The last delivery report stored for a phone (``d``)."""

    report_id: str  # the OutId's untagged part: ``report_id[2:]`` is its time (base 36)
    state: str  # "delivered", "failed" or "waiting" (then err_code is the BizId)
    err_code: str


def last_delivery(value: str | None) -> LastDelivery | None:
    """Decode a ``d`` field (shared by the memory and Redis stores)."""
    if not value:
        return None
    parts = value.split("|", 3)
    if len(parts) != 4 or parts[2] not in REPORT_STATES:
        return None
    return LastDelivery(parts[1], REPORT_STATES[parts[2]], parts[3])


class ReportStore(Protocol):
    """What the report receiver needs of a store (both stores implement it).

    ``record_delivery`` stores a report against its phone unless the phone already holds
    this very send's report (``"duplicate"``: first report wins, nothing changes) or the
    report of a newer send (``"late"``: an older send never overwrites a newer one);
    otherwise ``"stored"``. A "waiting" record of the same send (state ``w``) is replaced by
    its report, never the other way round. Raises StorageUnavailable like every store method.
    """

    def record_delivery(
        self, phone: str, report_id: str, state: str, err_code: str, *, ttl_ms: int
    ) -> str: ...

    def last_delivery(self, phone: str) -> LastDelivery | None: ...


# -- failover: which sender carried a code (senders/chain.py; lua/sender.lua) -------------
# ``sn:<purpose>`` = ``expires|send_id|index``, written only when a sender other than the
# first of SMSCODE_SENDER carried the code, and expiring with it: no field means the first.
SENDER_FIELD = "sn:"


def sender_index(value: str | None, send_id: str) -> int:
    """The sender index an ``sn:`` field records for ``send_id`` (0: the first sender)."""
    if not value:
        return 0
    parts = value.split("|")
    return int(parts[2]) if len(parts) == 3 and parts[1] == send_id and parts[2].isdigit() else 0


class SenderStore(Protocol):
    """What failover needs of a store (both stores implement it).

    ``record_sender`` notes that sender ``index`` (1 = the second) carried ``send_id``'s
    code, if that code is still the live one; ``sender_of`` reads it back (0 when nothing
    was recorded: the first sender). Raise StorageUnavailable like every store method.
    """

    def record_sender(self, phone: str, purpose: str, send_id: str, index: int) -> None: ...

    def sender_of(self, phone: str, purpose: str, send_id: str) -> int: ...


# -- replies and the suppression list (core/replies.py, core/suppression.py) ------------
# ``r`` in the phone's hash = ``expires|reply_id|sent_s``: the phone's last reply (its
# provider id, at most 40 characters, and its send time in epoch seconds), so that a reply
# delivered twice (the queue is at-least-once, a push is retried) is recorded and signalled
# once (lua/reply.lua). The suppression list is one hash for the whole app,
# ``<prefix>:supp:{suppressed}`` (phone -> ``<added, epoch ms>|<source>``): one slot on
# Cluster, read 1000 numbers per HMGET when a notification is filtered, listed with HSCAN.
# Cost: about 60 bytes per suppressed number (100,000 numbers: ~6 MB), no expiry (an
# unsubscribe holds until an operator removes it).
REPLY_FIELD = "r"
SUPPRESSION_SOURCES = ("reply", "cli", "api")


def suppression_key(prefix: str) -> str:
    """The suppression list's hash (its hash tag keeps it in one Cluster slot)."""
    return f"{prefix}:supp:{{suppressed}}"


@dataclass(frozen=True)
class SuppressedNumber:
    """One entry of the suppression list: since when (epoch ms) and who put it there."""

    phone: str
    since_ms: int
    source: str


def suppressed_number(phone: str, value: str) -> SuppressedNumber | None:
    """Decode one entry of the suppression list (shared by the memory and Redis stores)."""
    since, _, source = value.partition("|")
    if not since.isdigit():
        return None
    return SuppressedNumber(phone, int(since), source or "-")


class ReplyStore(Protocol):
    """What replies and the suppression list need of a store (both stores implement it).

    ``record_reply`` keeps the phone's last reply: ``"duplicate"`` when it is the same reply
    id, ``"late"`` when the stored one was sent later, else ``"stored"``. ``suppress`` adds
    a number (``False`` when it already was on the list: the first entry is kept),
    ``unsuppress`` removes it (``False`` when it was not on it), ``suppressed`` says which of
    ``phones`` are on it, ``suppression_list`` lists it. Raise StorageUnavailable like every
    store method.
    """

    def record_reply(self, phone: str, reply_id: str, sent_s: int, *, ttl_ms: int) -> str: ...

    def suppress(self, phone: str, source: str) -> bool: ...

    def unsuppress(self, phone: str) -> bool: ...

    def suppressed(self, phones: Sequence[str]) -> set[str]: ...

    def suppression_list(self) -> list[SuppressedNumber]: ...


class Store(CodeStore, ReportStore, SenderStore, ReplyStore, Protocol):
    """Everything the service asks of a store: the code decisions, delivery bookkeeping,
    replies and the suppression list, and which sender carried a code. Both stores
    implement all of it, so the service holds this one type and calls nothing through a
    cast."""
