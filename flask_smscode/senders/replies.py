"""A user's reply, in the form every vendor's parser produces and the core records; and
what a receipt consumer hands its messages to.

A vendor's reply format (Alibaba's SmsUp push or queue message, another vendor's callback)
is that vendor's business; what the core needs of one reply is :class:`Reply`, so
:mod:`flask_smscode.core.replies` names no vendor. :class:`ReceiptSink` is the other
direction: a vendor's long-running consumer (``aliyun/queue.py``) records what it decoded
through it, without knowing the core.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from flask_smscode.senders.reports import Report


@dataclass(frozen=True)
class Reply:
    """One reply (uplink SMS).

    ``phones`` are the E.164 numbers the reply's phone field may stand for, the most likely
    first (as for :class:`~flask_smscode.senders.reports.Report`); ``reply_id`` the provider's
    id of this reply (bounded, idempotency); ``sent_s`` its send time in epoch seconds (0:
    unknown); ``content`` what the user typed, kept out of ``repr`` (personal data).
    """

    phones: tuple[str, ...]
    reply_id: str
    sent_s: int
    content: str = field(repr=False)
    received_at: str = ""
    dest_code: str = ""
    sign_name: str = ""


class MalformedReplies(ValueError):
    """The body of a push or a queue message is not a reply (answered 400 / deleted)."""


class ReceiptSink(Protocol):
    """Where a consumer records what it received; returns counts per outcome.

    Both raise :class:`~flask_smscode.errors.StorageUnavailable` when nothing could be
    recorded: the consumer then keeps the message (it is not deleted, and comes back).
    Recording is idempotent: a message delivered twice is counted ``duplicate``.
    """

    def record_reports(self, reports: Sequence[Report]) -> dict[str, int]: ...

    def record_replies(self, replies: Sequence[Reply]) -> dict[str, int]: ...
