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

from ..config import Limit


class VerifyOutcome(enum.Enum):
    """Result kinds of :meth:`Store.check_code`."""

    OK = "ok"
    INVALID = "invalid"    # wrong code; attempts_left says how many remain
    EXPIRED = "expired"    # no live code for this phone and purpose
    LOCKED = "locked"      # too many failures in the window; retry_after says for how long
    THROTTLED = "client"   # the client's per-IP verify limit; retry_after says for how long


class Refusal(enum.Enum):
    """Who refused a send: the client's per-IP limit or the phone's cooldown and caps."""

    CLIENT = "client"
    PHONE = "phone"


@dataclass(frozen=True)
class VerifyResult:
    outcome: VerifyOutcome
    attempts_left: int
    retry_after: int = 0


@dataclass(frozen=True)
class SendDecision:
    """``refused_by`` is ``None`` when the send was reserved, else who refused and for how long."""

    refused_by: Refusal | None = None
    retry_after: int = 0

    @property
    def reserved(self) -> bool:
        return self.refused_by is None


@dataclass(frozen=True)
class ClientLimits:
    """The per-IP limits to count for one request: the client's key and its limits."""

    client: str
    limits: Sequence[Limit]


@dataclass(frozen=True)
class PhoneStatus:
    """A read-only snapshot of one phone and purpose, for operators (``flask smscode status``)."""

    code_ttl: int            # seconds left on the live code, 0 if none
    out_id: str | None       # OutId of the live code's SendSms call
    failures: int
    failures_ttl: int
    cooldown: int            # seconds until the next send is allowed
    sends: dict[str, int]    # limit text ("5 per 1 hour") -> sends counted in its window


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


class Store(Protocol):
    """The storage backend contract; see :mod:`.memory` and :mod:`.redis`.

    Every method raises :class:`~flask_smscode.errors.StorageUnavailable` when the
    backend cannot be reached or answers too late, and then has changed nothing.
    """

    def reserve_send(self, phone: str, purpose: str, code_hash: str, send_id: str, *,
                     ttl: int, cooldown: int, limits: Sequence[Limit],
                     client: ClientLimits | None = None) -> SendDecision:
        """Count the client's request, then atomically check cooldown and caps; if clear,
        count the send, start the cooldown and store the code (replacing any older one)."""
        ...

    def hit_client(self, endpoint: str, client: ClientLimits) -> int:
        """Count one request of ``client`` on ``endpoint`` ("send" or "verify") on its own;
        return 0 when allowed, else the seconds to wait."""
        ...

    def cancel_send(self, phone: str, purpose: str, send_id: str, *,
                    limits: Sequence[Limit]) -> None:
        """Undo a reservation the provider definitely rejected: drop its code and its
        cooldown (if still this send's) and give back the counted sends."""
        ...

    def check_code(self, phone: str, purpose: str, code_hash: str, *,
                   max_attempts: int, window: int,
                   client: ClientLimits | None = None) -> VerifyResult:
        """Count the client's request, then atomically compare, count a failure or consume
        the code."""
        ...

    def use_token(self, token_id: str, ttl: int) -> bool:
        """Mark a token id used; ``False`` if it already was."""
        ...

    def token_used(self, token_id: str) -> bool:
        """Whether a token id was used (a peek: marks nothing)."""
        ...

    def status(self, phone: str, purpose: str, *, limits: Sequence[Limit]) -> PhoneStatus:
        ...

    def reset(self, phone: str, purposes: Sequence[str], *, limits: Sequence[Limit]) -> int:
        """Delete the phone's codes, failures (for ``purposes``), cooldown and send
        counters; return how many of them existed."""
        ...

    def ping(self) -> None:
        ...

    def close(self) -> None:
        ...


ENDPOINT_FIELDS = {"send": "s", "verify": "v"}
