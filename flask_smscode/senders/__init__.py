"""Senders: the one-method contract, the console sender, the failover chain, and the
registry that finds a sender kind by name (``SMSCODE_SENDER``)."""

from __future__ import annotations

from flask_smscode.senders.base import Check, DeliveryUnconfirmed, Sender, SendReceipt
from flask_smscode.senders.console import ConsoleSender
from flask_smscode.senders.registry import build_sender, register_sender, sender_specs

__all__ = [
    "Check",
    "ConsoleSender",
    "DeliveryUnconfirmed",
    "SendReceipt",
    "Sender",
    "build_sender",
    "register_sender",
    "sender_specs",
]
