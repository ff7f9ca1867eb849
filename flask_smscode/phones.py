"""Phone numbers: one spelling per number (E.164), mobile-only, region-gated, masked for logs.

Normalisation is what makes throttles hold: ``13800138000``, ``+86 138 0013 8000``,
``008613800138000`` and full-width digits must all land on the same Redis keys.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Collection

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from .errors import InvalidPhone, RegionNotAllowed

_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
_MAX_INPUT_LENGTH = 64  # longer input is not a phone number; refuse before parsing
# After NFKC: digits, at most one "+", and the separators people type ("(+86) 138-0013").
# phonenumbers alone would accept "13800138000x" or vanity letters, which no SMS form should.
_PHONE_CHARS = re.compile(r"[0-9 ()./+-]+")


def parse_phone(raw: str, default_region: str = "CN") -> phonenumbers.PhoneNumber:
    """Parse any common spelling of a mobile number; raise :class:`InvalidPhone` otherwise."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > _MAX_INPUT_LENGTH:
        raise InvalidPhone()
    # NFKC turns full-width digits and plus signs into ASCII; phonenumbers drops separators.
    # Tabs and other white space between digit groups read as spaces.
    text = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", raw)).strip()
    if not _PHONE_CHARS.fullmatch(text) or text.count("+") > 1:
        raise InvalidPhone()
    try:
        number = phonenumbers.parse(text, default_region)
    except NumberParseException:
        raise InvalidPhone() from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone()
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise InvalidPhone("Only mobile phone numbers can receive codes.")
    return number


def normalize_phone(raw: str, default_region: str = "CN",
                    allowed_regions: Collection[str] | None = ("CN",)) -> str:
    """Return the E.164 form of ``raw`` (``+8613800138000``), enforcing the allowed regions.

    ``allowed_regions`` of ``None`` or containing ``"*"`` allows every region.
    """
    if not isinstance(raw, str):
        raise InvalidPhone()
    regions = None if allowed_regions is None or "*" in allowed_regions \
        else tuple(allowed_regions)
    kind, value = _normalize_cached(raw, default_region, regions)
    if kind == "region":
        raise RegionNotAllowed()
    if kind == "invalid":
        raise InvalidPhone(value or None)
    return value


@functools.lru_cache(maxsize=8192)
def _normalize_cached(raw: str, default_region: str,
                      allowed_regions: tuple[str, ...] | None) -> tuple[str, str]:
    """Parsing dominates a send or verify (phonenumbers is pure Python), and a verify
    follows a send for the same spelling: memoise the outcome, errors included."""
    try:
        number = parse_phone(raw, default_region)
    except InvalidPhone as exc:
        return "invalid", "" if exc.message == InvalidPhone.default_message else exc.message
    if allowed_regions is not None:
        if phonenumbers.region_code_for_number(number) not in allowed_regions:
            return "region", ""
    return "ok", phonenumbers.format_number(number, PhoneNumberFormat.E164)


def mask_phone(e164: str) -> str:
    """Mask the middle of a number for logs and answers: ``+8613800138000`` → ``138****8000``.

    Mainland numbers drop the country code (the form users know); others keep it.
    """
    country, national = _split_e164(e164)
    prefix = "" if country in (86, None) else f"+{country} "
    # Never more than about half the digits: head 3 + tail 4 of 11 for mainland numbers.
    size = len(national)
    tail = 4 if size >= 8 else 2
    head = 3 if size >= 10 else (1 if size >= 8 else 0)
    if size <= tail:
        return prefix + "*" * size
    return prefix + national[:head] + "*" * (size - head - tail) + national[-tail:]


def _split_e164(text: str) -> tuple[int | None, str]:
    """Country code and national number of an E.164 string, without a full parse (country
    codes are prefix-free, so the first known 1-3 digit prefix is the one)."""
    digits = text[1:] if text.startswith("+") else ""
    if digits.isascii() and digits.isdigit():
        for size in (1, 2, 3):
            if int(digits[:size]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
                return int(digits[:size]), digits[size:]
    return None, "".join(ch for ch in text if ch.isascii() and ch.isdigit())


def provider_phone(e164: str) -> str:
    """The form Alibaba Cloud expects: 11 digits for mainland, country code + number otherwise."""
    digits = e164.lstrip("+")
    return digits[2:] if digits.startswith("86") else digits
