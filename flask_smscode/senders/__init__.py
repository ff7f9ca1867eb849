"""Senders: ``console``, ``aliyun``, or the dotted path of your own class."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import import_module
from typing import Any

from ..errors import ConfigurationError
from .base import DeliveryUnconfirmed, Sender, SendReceipt
from .console import ConsoleSender

__all__ = ["ConsoleSender", "DeliveryUnconfirmed", "SendReceipt", "Sender", "build_sender"]


def build_sender(name: Any, config: Mapping[str, Any], *, show_code: bool,
                 purposes: Sequence[str]) -> Sender:
    """Resolve ``SMSCODE_SENDER`` to a ready sender; fail at start-up naming the key."""
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
            raise ConfigurationError(f"SMSCODE_SENDER: {name!r} is not 'aliyun', 'console' or "
                                     "a dotted path to a sender class.")
        try:
            cls = getattr(import_module(module_name), attr)
        except (ImportError, AttributeError):
            raise ConfigurationError(f"SMSCODE_SENDER: cannot import {name!r}.") from None
        sender = cls(config)
    if not callable(getattr(sender, "send", None)):
        raise ConfigurationError(f"SMSCODE_SENDER: {name!r} has no send() method.")
    checked: Sender = sender  # a user's object, checked for the one method just above
    return checked
