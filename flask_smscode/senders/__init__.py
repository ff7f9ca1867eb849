"""Senders: ``console``, ``aliyun``, or the dotted path of your own class."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import import_module
from typing import Any

from ..errors import ConfigurationError
from .base import DeliveryUnconfirmed, Sender, SendReceipt
from .console import ConsoleSender

__all__ = [
    "ConsoleSender",
    "DeliveryUnconfirmed",
    "SendReceipt",
    "Sender",
    "build_sender",
    "sender_names",
]


def build_sender(
    name: Any, config: Mapping[str, Any], *, show_code: bool, purposes: Sequence[str]
) -> Sender:
    """Resolve ``SMSCODE_SENDER`` to a ready sender; fail at start-up naming the key.

    Several names (a list, or ``"aliyun,backup"``) give a :class:`FailoverSender` that
    moves on only after a definite failure of the provider (senders/failover.py).
    """
    from .failover import FailoverSender
    from .names import sender_specs

    specs = sender_specs({**config, "SMSCODE_SENDER": name})
    built: list[tuple[str, Sender]] = []
    for spec in specs:
        failure: ConfigurationError | None = None
        try:
            built.append(
                (
                    spec.name,
                    _build_one(spec.kind, spec.config, show_code=show_code, purposes=purposes),
                )
            )
        except ConfigurationError as exc:
            if not spec.named:
                raise
            # "SMSCODE_ALIYUN_SIGN_NAME must be set" names the key, this says whose.
            failure = ConfigurationError(f"SMSCODE_SENDERS_CONFIG[{spec.name!r}]: {exc}")
        if failure is not None:
            raise failure
    return built[0][1] if len(built) == 1 else FailoverSender(built)


def sender_names(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The names of ``SMSCODE_SENDER``'s senders, in order (log, metric and status labels)."""
    from .names import sender_specs

    return tuple(spec.name for spec in sender_specs(config))


def _build_one(
    name: Any, config: Mapping[str, Any], *, show_code: bool, purposes: Sequence[str]
) -> Sender:
    """One sender: ``aliyun``, ``console``, a dotted path, a class or an instance."""
    if not isinstance(name, str):  # an instance or class given directly
        sender = name(config) if isinstance(name, type) else name
    elif name == "console":
        return ConsoleSender(config, show_code=show_code)
    elif name == "aliyun":
        from ..aliyun.sender import AliyunSender

        return AliyunSender(config, purposes=purposes)
    else:
        module_name, _, attr = name.rpartition(".")
        if not module_name:
            raise ConfigurationError(
                f"SMSCODE_SENDER: {name!r} is not 'aliyun', 'console' or "
                "a dotted path to a sender class."
            )
        try:
            cls = getattr(import_module(module_name), attr)
        except (ImportError, AttributeError):
            raise ConfigurationError(f"SMSCODE_SENDER: cannot import {name!r}.") from None
        sender = cls(config)
    if not callable(getattr(sender, "send", None)):
        raise ConfigurationError(f"SMSCODE_SENDER: {name!r} has no send() method.")
    checked: Sender = sender  # a user's object, checked for the one method just above
    return checked
