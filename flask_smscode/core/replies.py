"""Replies (uplink SMS): recorded per phone, and the unsubscribe words that put a number on
the suppression list. Provider-blind: a vendor's parser turns its push or queue message into
:class:`~flask_smscode.senders.replies.Reply` records, and this module decides.

**What is an unsubscribe.** The whole reply, compared after NFKC normalisation (a
full-width TD, U+FF34 U+FF24, is ``TD``), case folding, and with spaces, punctuation and
symbols dropped, is one of ``SMSCODE_UNSUBSCRIBE_WORDS`` (zh and en defaults: ``TD``,
``T``, ``退订``, ``退``, ``STOP``...). A sentence that merely contains a word
("TD是什么") is a message, not an unsubscribe: carriers ask users to reply with the word
alone, and a false positive silences a customer.

**Once per reply.** The queue delivers at least once and a push is retried, so the phone's
last reply id is kept (field ``r``, stores/base.py): the same reply again is a
``duplicate`` (counted, nothing else). A reply sent before the stored one is ``late``: it is
still a different message, so it is signalled (a user's words to support are not dropped),
and the stored one stays. The number is suppressed *before* the reply is recorded: a crash
in between replays the message, which then finds it listed (idempotent) and records it.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from typing import Any

from flask_smscode.config import ReplySettings
from flask_smscode.core.suppression import Suppression
from flask_smscode.events import log_event, send_signal
from flask_smscode.metrics import REPLIES
from flask_smscode.phones import mask_phone
from flask_smscode.senders.replies import Reply
from flask_smscode.signals import reply_received
from flask_smscode.stores.base import Store


def reply_word(text: str) -> str:
    """``text`` as it is compared with the unsubscribe words: NFKC (full-width letters and
    digits become ASCII), case-folded, without whitespace, punctuation, symbols or controls."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] in "LN")


class Replies:
    """One app's reply bookkeeping over its store."""

    def __init__(
        self, store: Store, settings: ReplySettings, suppression: Suppression, *, ttl_ms: int
    ) -> None:
        self.store = store
        self.settings = settings
        self.suppression = suppression
        self.ttl_ms = ttl_ms
        self.words = frozenset(w for w in (reply_word(word) for word in settings.words) if w)

    def is_unsubscribe(self, content: str) -> bool:
        """Whether the whole reply is an unsubscribe word (see the module docstring)."""
        word = reply_word(content[:64])
        return bool(word) and word in self.words

    def record(self, replies: Sequence[Reply], app: Any = None) -> dict[str, int]:
        """Record each reply; returns counts per outcome (``received``, ``unsubscribed``,
        ``duplicate``, ``late``, ``unknown``). Raises StorageUnavailable when the store
        fails: the caller keeps the message (queue) or answers 503 (push), and the replay
        is idempotent."""
        counts: dict[str, int] = {}
        for reply in replies:
            outcome = self._record_one(reply, app)
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts

    def _record_one(self, reply: Reply, app: Any) -> str:
        if not reply.phones:
            REPLIES.count("unknown")
            return "unknown"
        phone = reply.phones[0]
        unsubscribe = self.is_unsubscribe(reply.content)
        if unsubscribe:
            self.suppression.add(phone, "reply")
        result = self.store.record_reply(phone, reply.reply_id, reply.sent_s, ttl_ms=self.ttl_ms)
        if result == "duplicate":
            REPLIES.count("duplicate")
            return "duplicate"
        outcome = "late" if result == "late" else "unsubscribed" if unsubscribe else "received"
        REPLIES.count(outcome)
        # The text is the user's: never logged, only handed to the app's receivers.
        log_event(
            logging.INFO,
            "reply",
            phone=mask_phone(phone),
            outcome=outcome,
            unsubscribed=unsubscribe,
            reply_id=reply.reply_id,
        )
        send_signal(
            reply_received,
            app,
            phone=phone,
            content=reply.content,
            unsubscribed=unsubscribe,
            received_at=reply.received_at,
            dest_code=reply.dest_code,
            sign_name=reply.sign_name,
        )
        return outcome
