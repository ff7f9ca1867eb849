"""Phone numbers in the form Alibaba Cloud's SendSms and QuerySendDetails take."""

from __future__ import annotations

MAINLAND_CALLING_CODE = "86"


def provider_phone(e164: str) -> str:
    """E.164 to Alibaba's form: 11 digits for a mainland number, country code + number
    without ``+`` or ``00`` otherwise (``+85261234567`` -> ``85261234567``)."""
    digits = e164.lstrip("+")
    return digits[2:] if digits.startswith(MAINLAND_CALLING_CODE) else digits


def is_mainland(e164: str) -> bool:
    """Whether Alibaba treats the number as domestic (a mainland template can reach it)."""
    return e164.lstrip("+").startswith(MAINLAND_CALLING_CODE)
