"""The sender contract: deliver one code to one phone, or say why not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SendReceipt:
    """What the provider said about an accepted message (for logs and receipts)."""

    provider_code: str | None = None
    request_id: str | None = None
    biz_id: str | None = None


class DeliveryUnconfirmed(Exception):
    """Raise from a sender when the request may have reached the provider but no answer
    came back (a read timeout). The code and cooldown are kept and the send is not retried.
    """

    def __init__(self, message: str = "The provider did not answer in time",
                 *, provider_code: str | None = None, request_id: str | None = None) -> None:
        super().__init__(message)
        self.provider_code = provider_code
        self.request_id = request_id


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
