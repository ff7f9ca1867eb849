"""The suppression list: numbers that said "no more messages" (an unsubscribe reply, or an
operator) and that notifications skip.

Provider-blind: the list lives in the store (one hash, see stores/base.py), and who reads it
decides what it blocks. Notifications always skip a suppressed number (carriers require it
of marketing and notice messages); verification codes are transactional (the user asked for
the code just now) and go through unless ``SMSCODE_SUPPRESS_CODES`` is true
(:meth:`blocks_codes`). An entry holds until removed (``flask smscode suppress remove``):
a user who unsubscribed has not subscribed again by asking for a code.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from flask_smscode.events import log_event
from flask_smscode.phones import mask_phone
from flask_smscode.stores.base import SUPPRESSION_SOURCES, Store, SuppressedNumber


class Suppression:
    """One app's suppression list over its store; phones are E.164."""

    def __init__(self, store: Store, *, suppress_codes: bool = False) -> None:
        self.store = store
        self.suppress_codes = suppress_codes

    def add(self, phone: str, source: str = "api") -> bool:
        """Put ``phone`` on the list; ``False`` when it already was (its first entry stays).
        ``source`` says who: ``reply`` (an unsubscribe word), ``cli`` or ``api``."""
        source = source if source in SUPPRESSION_SOURCES else "api"
        added = self.store.suppress(phone, source)
        if added:
            log_event(
                logging.INFO, "suppression", phone=mask_phone(phone), outcome="added", source=source
            )
        return added

    def remove(self, phone: str) -> bool:
        """Take ``phone`` off the list; ``False`` when it was not on it."""
        removed = self.store.unsuppress(phone)
        if removed:
            log_event(logging.INFO, "suppression", phone=mask_phone(phone), outcome="removed")
        return removed

    def is_suppressed(self, phone: str) -> bool:
        return bool(self.store.suppressed([phone]))

    def suppressed(self, phones: Sequence[str]) -> Collection[str]:
        """Which of ``phones`` are on the list (a notification's filter: one store round
        trip per 1000 numbers on Redis)."""
        return self.store.suppressed(phones)

    def entries(self) -> list[SuppressedNumber]:
        """The whole list, sorted by phone."""
        return self.store.suppression_list()

    def blocks_codes(self, phone: str) -> bool:
        """Whether a verification code to ``phone`` is refused: only with
        ``SMSCODE_SUPPRESS_CODES`` (one more store read per send, then) and a listed number."""
        return self.suppress_codes and self.is_suppressed(phone)
