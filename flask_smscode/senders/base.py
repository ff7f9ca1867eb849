"""The sender contract: deliver one code to one phone, or say why not."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from flask_smscode.errors import DeliveryUnconfirmed

__all__ = [
    "FAIL",
    "OK",
    "SKIP",
    "WARN",
    "Check",
    "DeliveryUnconfirmed",
    "SendReceipt",
    "Sender",
    "SupportsCheck",
    "SupportsCreate",
    "send_seconds",
]

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
DEFAULT_SEND_SECONDS = 5.0  # what a sender that states no timeout is assumed to take at most


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


@runtime_checkable
class SupportsCreate(Protocol):
    """A registered sender class builds itself from its config view and the app's facts.

    The registry calls ``create`` when the class has it (built-in and entry-point senders);
    a class without it is built as ``Class(config)``, the contract of a dotted path.
    """

    @classmethod
    def create(
        cls, config: Mapping[str, Any], *, purposes: Sequence[str], show_code: bool
    ) -> Sender: ...


@runtime_checkable
class SupportsCheck(Protocol):
    """A sender class that ``flask smscode doctor`` can check from its config view alone
    (the config may be too broken to build the sender, which is what doctor is for)."""

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> list[Check]: ...


@dataclass(frozen=True)
class Check:
    """One line of ``flask smscode doctor``: ``key``/``fix_key`` are message catalogue keys,
    so the CLI prints it in the operator's language."""

    check: str  # provider, endpoint, clock, credentials, sign, template, intl_template, store
    status: str  # ok, warn, fail, skip
    key: str
    params: dict[str, Any] = field(default_factory=dict)
    fix_key: str | None = None
    fix_params: dict[str, Any] = field(default_factory=dict)
    subject: str = ""  # the template code (and purposes) a template line is about
    sender: str = ""  # the sender a provider line is about (several senders)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def send_seconds(sender: object) -> float:
    """The longest a send through ``sender`` may take (its ``send_seconds`` attribute, else
    :data:`DEFAULT_SEND_SECONDS`): how long an Idempotency-Key's claim must hold so that a
    duplicate never sends while the first request is still waiting on the provider."""
    value = getattr(sender, "send_seconds", None)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return DEFAULT_SEND_SECONDS
