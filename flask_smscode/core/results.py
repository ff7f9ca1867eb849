"""What a successful send or verify returns to its caller (the view or the Python API)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_smscode.phones import mask_phone


@dataclass(frozen=True)
class SendResult:
    """A code is live for ``phone``. ``delivery`` is ``"sent"``, or ``"unconfirmed"`` when
    the provider did not answer in time (the SMS may still arrive; do not resend early)."""

    phone: str
    purpose: str
    expires_in: int
    resend_in: int
    delivery: str
    replayed: bool = False  # the answer of an earlier request with the same Idempotency-Key

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "phone": self.masked_phone,
            "purpose": self.purpose,
            "expires_in": self.expires_in,
            "resend_in": self.resend_in,
            "delivery": self.delivery,
        }


@dataclass(frozen=True)
class VerifyResult:
    """``phone`` was verified for ``purpose``; ``token`` proves it to your own views."""

    phone: str
    purpose: str
    token: str
    expires_in: int

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "phone": self.phone,
            "purpose": self.purpose,
            "token": self.token,
            "token_expires_in": self.expires_in,
        }
