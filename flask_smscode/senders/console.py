"""A sender for development: logs that a code was sent instead of sending an SMS."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from flask_smscode.phones import mask_phone
from flask_smscode.senders.base import SKIP, Check, SendReceipt

logger = logging.getLogger("flask_smscode.console")


class ConsoleSender:
    """Logs ``code sent to 138****8000 for login`` at INFO on ``flask_smscode.console``.

    The code itself is added only when the app runs with ``debug`` or ``testing`` on, which
    is how the demo shows it; in any other mode the line carries no code.
    """

    name = "console"
    send_seconds = 0.1  # a log line

    def __init__(self, config: Mapping[str, Any], *, show_code: bool = False) -> None:
        self.show_code = show_code

    @classmethod
    def create(
        cls, config: Mapping[str, Any], *, purposes: Sequence[str], show_code: bool
    ) -> ConsoleSender:
        return cls(config, show_code=show_code)

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> list[Check]:
        """Nothing to check: no provider is called."""
        return [Check("provider", SKIP, "cli.doctor.provider.console")]

    def send(self, phone: str, code: str, purpose: str, *, out_id: str) -> SendReceipt:
        if self.show_code:
            logger.info(
                "smscode console sender: code %s sent to %s for %s (debug/testing only)",
                code,
                mask_phone(phone),
                purpose,
            )
        else:
            logger.info(
                "smscode console sender: code sent to %s for %s (no SMS; set "
                "SMSCODE_SENDER for real delivery)",
                mask_phone(phone),
                purpose,
            )
        return SendReceipt(
            provider_code="console", request_id=out_id, out_id=out_id, sender="console"
        )
