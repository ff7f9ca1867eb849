"""The sender contract: deliver one code to one phone, or say why not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..errors import DeliveryUnconfirmed

__all__ = ["DeliveryUnconfirmed", "SendReceipt", "Sender"]


@dataclass(frozen=True)
class SendReceipt:
    """What a sender hands back when the provider accepted a message (logs, receipts,
    failover). A refusal carries the same fields on the error it raises
    (:meth:`~flask_smscode.errors.SmsCodeError.with_provider`)."""

    provider_code: str | None = None
    request_id: str | None = None
    biz_id: str | None = None
    out_id: str | None = None
    sender: str | None = None  # which sender carried it ("aliyun", "console", ...)


class Sender(Protocol):
    """Anything with this method can send codes (``SMSCODE_SENDER = "pkg.mod.Class"``).

    A custom class is constructed with the app's config mapping: ``Class(app.config)``.
    To refuse, raise :class:`~flask_smscode.errors.ProviderError` (502),
    :class:`~flask_smscode.errors.Throttled` (429) or
    :class:`~flask_smscode.errors.InvalidPhone` (400): the code and cooldown are then
    dropped. Raise :class:`DeliveryUnconfirmed` when the outcome is unknown.
    """

    def send(self, phone: str, code: str, purpose: str, *, out_id: str) -> SendReceipt:
        """Send ``code`` to ``phone`` (E.164) for ``purpose``; ``out_id`` tags the message."""
        ...
