"""Several senders in order (``SMSCODE_SENDER = ["aliyun", "backup"]``): one SMS, at most.

A send moves to the next sender only when the current one raised
:class:`~flask_smscode.errors.ProviderUnavailable` — a *definite* failure of the provider
itself, after which nothing was sent (each vendor's own error table decides which of its
failures are definite; this loop only follows the answer).
Anything else ends the send where it is: a receipt, an unknown outcome
(:class:`DeliveryUnconfirmed`: the SMS may be on its way, and a second one would be a
duplicate), a refusal about the number or flow control, or a custom sender's bug. The same
OutId goes to every attempt, so a delivery report finds its send whoever carried it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from flask_smscode.errors import (
    DeliveryUnconfirmed,
    ProviderError,
    ProviderUnavailable,
    SmsCodeError,
)
from flask_smscode.events import failover, log_event
from flask_smscode.phones import mask_phone
from flask_smscode.senders.base import Sender, SendReceipt, send_seconds


class FailoverSender:
    """Tries ``senders`` (name, sender) in order; the receipt or error names the one that
    answered last (``sender``), which the service logs, counts and stores with the code."""

    def __init__(self, senders: Sequence[tuple[str, Sender]]) -> None:
        if len(senders) < 2:
            raise ValueError("FailoverSender needs at least two senders")
        self.senders = tuple(senders)
        self.names = tuple(name for name, _ in self.senders)
        # A send may wait on every sender in turn before its answer.
        self.send_seconds = sum(send_seconds(sender) for _, sender in self.senders)

    def send(self, phone: str, code: str, purpose: str, *, out_id: str) -> SendReceipt:
        return send_in_order(self.senders, phone, code, purpose, out_id=out_id)


def send_in_order(
    senders: Sequence[tuple[str, Sender]], phone: str, code: str, purpose: str, *, out_id: str
) -> SendReceipt:
    """The failover rule, once for every caller (a list, a route of
    :class:`~flask_smscode.senders.routes.RoutingSender`, even a route of one sender): try
    each (name, sender) in order with the same ``out_id``, move on only after
    :class:`ProviderUnavailable`, and name the sender that answered last on the receipt or
    the error. Vendor-blind: which failures are definite is each vendor's own table.
    """
    last = len(senders) - 1
    for index, (name, sender) in enumerate(senders):
        failure: SmsCodeError | DeliveryUnconfirmed | None = None
        try:
            receipt = sender.send(phone, code, purpose, out_id=out_id)
        except ProviderUnavailable as exc:
            exc.sender = name
            if index == last:
                raise  # every sender failed: the service answers 502, cancels once
            failover(
                name,
                senders[index + 1][0],
                phone=phone,
                purpose=purpose,
                provider_code=exc.provider_code,
                request_id=exc.request_id,
            )
            continue
        except (SmsCodeError, DeliveryUnconfirmed) as exc:
            exc.sender = name
            raise  # a refusal or an unknown outcome: never another SMS
        except Exception as exc:  # a custom sender's bug: unknown whether it sent
            log_event(
                logging.ERROR,
                "send.sender_error",
                phone=mask_phone(phone),
                purpose=purpose,
                sender=name,
                exception=type(exc).__name__,
            )
            failure = ProviderError().with_provider(sender=name)
        if failure is not None:
            raise failure  # outside the except block: its text may hold the code
        if isinstance(receipt, SendReceipt):
            return dataclasses.replace(receipt, sender=name)
        return SendReceipt(sender=name)  # a custom sender that returned nothing
    raise AssertionError("unreachable: the last sender returns or raises")
