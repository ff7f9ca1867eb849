"""What a store decides, and the key layout shared by every store.

A store makes the two decisions that must be atomic — "may this phone get a code now"
(cooldown and caps, together with storing the code) and "is this code right" (together
with counting the attempt and consuming the code) — plus single-use token bookkeeping.
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
    INVALID = "invalid"   # wrong code; attempts_left says how many remain
    EXPIRED = "expired"   # no live code for this phone and purpose
    LOCKED = "locked"     # too many failures in the window; retry_after says for how long


@dataclass(frozen=True)
class VerifyResult:
    outcome: VerifyOutcome
    attempts_left: int
    retry_after: int = 0


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
    """Key names. Every key of one phone carries the phone as a ``{hash tag}``.

    That keeps each script's keys in one slot, so the scripts stay valid on Redis Cluster.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def code(self, phone: str, purpose: str) -> str:
        return f"{self.prefix}:{{{phone}}}:code:{purpose}"

    def failures(self, phone: str, purpose: str) -> str:
        return f"{self.prefix}:{{{phone}}}:fail:{purpose}"

    def cooldown(self, phone: str) -> str:
        return f"{self.prefix}:{{{phone}}}:cooldown"

    def sends(self, phone: str, limit: Limit) -> str:
        # amount and window: two limits over the same window must not share a counter
        return f"{self.prefix}:{{{phone}}}:sends:{limit.amount}/{limit.seconds}"

    def token(self, token_id: str) -> str:
        return f"{self.prefix}:token:{token_id}"


class Store(Protocol):
    """The storage backend contract; see :mod:`.memory` and :mod:`.redis`.

    Every method raises :class:`~flask_smscode.errors.StorageUnavailable` when the
    backend cannot be reached, and then has changed nothing.
    """

    def reserve_send(self, phone: str, purpose: str, code_hash: str, send_id: str, *,
                     ttl: int, cooldown: int, limits: Sequence[Limit]) -> int:
        """Atomically check cooldown and caps; if clear, count the send, start the
        cooldown and store the code (replacing any older one). Return 0 when reserved,
        else the seconds to wait."""
        ...

    def cancel_send(self, phone: str, purpose: str, send_id: str, *,
                    limits: Sequence[Limit]) -> None:
        """Undo a reservation the provider definitely rejected: drop its code and its
        cooldown (if still this send's) and give back the counted sends."""
        ...

    def check_code(self, phone: str, purpose: str, code_hash: str, *,
                   max_attempts: int, window: int) -> VerifyResult:
        """Atomically compare, count a failure or consume the code."""
        ...

    def use_token(self, token_id: str, ttl: int) -> bool:
        """Mark a token id used; ``False`` if it already was."""
        ...

    def status(self, phone: str, purpose: str, *, limits: Sequence[Limit]) -> PhoneStatus:
        ...

    def reset(self, phone: str, purposes: Sequence[str], *, limits: Sequence[Limit]) -> int:
        """Delete the phone's codes, failures (for ``purposes``), cooldown and send
        counters; return how many keys existed."""
        ...

    def ping(self) -> None:
        ...

    def close(self) -> None:
        ...
