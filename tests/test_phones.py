"""Phone normalisation, region gating, masking and the provider's spelling.

Throttles and codes are keyed by the normalised number, so every spelling of one number
must land on one E.164 string, and anything that is not a mobile number must be refused
before it reaches a key or the SMS provider.
"""

from __future__ import annotations

import re

import phonenumbers
import pytest

from flask_smscode.aliyun.numbers import provider_phone
from flask_smscode.errors import InvalidPhone, RegionNotAllowed
from flask_smscode.phones import mask_phone, normalize_phone, parse_phone

E164 = "+8613800138000"
GB_MOBILE = "+447400123456"
US_NUMBER = "+12015550123"


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "+8613800138000",
        "+86 138 0013 8000",
        "86 138 0013 8000",
        "008613800138000",
        "8613800138000",
        "１３８００１３８０００",  # full-width digits (Chinese IMEs)
        "＋８６１３８００１３８０００",  # full-width plus and digits
        "＋86 138 0013 8000",
        "１３８－００１３－８０００",  # full-width hyphen-minus
        "  13800138000  ",
        "138-0013-8000",
        "+86-138-0013-8000",
        "138.0013.8000",
        "+86 (138) 0013-8000",
        "+86(138)0013-8000",
        "(+86) 138 0013 8000",  # bracketed country code, common in CN forms
        "138 0013 8000\n",
        "\t13800138000\t",
        "138\t0013\t8000",  # tabs between groups (pasted from a spreadsheet)
        "138\u00a00013\u00a08000",  # no-break spaces (NFKC → space)
        "138\u30000013\u30008000",  # ideographic spaces (NFKC → space)
    ],
)
def test_every_spelling_of_one_number_normalises_to_one_e164(raw: str) -> None:
    """Different spellings must share keys, or each spelling gets its own throttle."""
    assert normalize_phone(raw) == E164


@pytest.mark.parametrize(
    "raw",
    [
        "010 1234 5678",  # Beijing landline
        "01012345678",
        "+86 10 1234 5678",
    ],
)
def test_landlines_are_refused(raw: str) -> None:
    """A landline cannot receive an SMS; sending would waste money and leak nothing useful."""
    with pytest.raises(InvalidPhone) as info:
        normalize_phone(raw)
    assert "mobile" in info.value.message.lower()


@pytest.mark.parametrize(
    "raw",
    [
        "1380013800",  # one digit short
        "138001380000",  # one digit long
        "+861380013800",
        "1",
        "+",
        "+86",
        "++8613800138000",
        "",
        "   ",
        "1380013800a",
        "13800138000x",
        "138OO138OOO",  # letter O for zero
        "1-800-FLOWERS",  # vanity number
        "+1 800 FLOWERS",
        "tel:+8613800138000",
        "13800138000; DROP",
        "13800138000#1",
        "13800138000 ext. 1",
        "١٣٨٠٠١٣٨٠٠٠",  # Arabic-Indic digits: NFKC keeps them, the regex refuses them
        "1" * 65,
        "+8613800138000" + " " * 60,
        "9" * 10_000,
    ],
)
def test_malformed_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)


@pytest.mark.parametrize(
    "raw", [None, 13800138000, 1.38e10, b"13800138000", ["13800138000"], {"phone": "13800138000"}]
)
def test_non_strings_are_refused(raw: object) -> None:
    """JSON bodies can carry numbers, lists or objects; they must not crash the parser."""
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)  # type: ignore[arg-type]


def test_parse_phone_returns_a_phonenumber_for_mobiles() -> None:
    number = parse_phone("138 0013 8000")
    assert isinstance(number, phonenumbers.PhoneNumber)
    assert (number.country_code, number.national_number) == (86, 13800138000)


@pytest.mark.parametrize("raw", [GB_MOBILE, "+44 7400 123456", "0044 7400 123456", US_NUMBER])
def test_foreign_mobiles_are_not_allowed_by_default(raw: str) -> None:
    """Default is mainland only: international SMS costs more and needs its own template."""
    with pytest.raises(RegionNotAllowed):
        normalize_phone(raw)


def test_foreign_mobile_allowed_when_its_region_is_listed() -> None:
    assert normalize_phone("+44 7400 123456", allowed_regions=("CN", "GB")) == GB_MOBILE
    assert normalize_phone(US_NUMBER, allowed_regions=("US",)) == US_NUMBER
    with pytest.raises(RegionNotAllowed):
        normalize_phone(US_NUMBER, allowed_regions=("CN", "GB"))


@pytest.mark.parametrize("allowed", [("*",), ("CN", "*"), None])
def test_star_or_none_allows_every_region(allowed: tuple[str, ...] | None) -> None:
    assert normalize_phone(GB_MOBILE, allowed_regions=allowed) == GB_MOBILE
    assert normalize_phone(US_NUMBER, allowed_regions=allowed) == US_NUMBER
    assert normalize_phone("13800138000", allowed_regions=allowed) == E164


def test_region_gate_does_not_let_landlines_through() -> None:
    """Allowing every region must not relax the mobile-only rule."""
    with pytest.raises(InvalidPhone):
        normalize_phone("010 1234 5678", allowed_regions=("*",))


def test_default_region_decides_numbers_without_country_code() -> None:
    assert (
        normalize_phone("07400 123456", default_region="GB", allowed_regions=("GB",)) == GB_MOBILE
    )


def test_mask_mainland_number_drops_country_code() -> None:
    assert mask_phone(E164) == "138****8000"


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        (GB_MOBILE, "+44 740***3456"),
        (US_NUMBER, "+1 201***0123"),
        ("+85251234567", "+852 5***4567"),
    ],
)
def test_mask_international_number_keeps_country_code(e164: str, masked: str) -> None:
    assert mask_phone(e164) == masked


def _visible_digits(masked: str) -> str:
    """The national digits a masked number still shows (country code prefix removed)."""
    national = masked.split(" ", 1)[1] if masked.startswith("+") else masked
    return re.sub(r"\D", "", national)


@pytest.mark.parametrize(
    "e164",
    [
        E164,
        GB_MOBILE,
        US_NUMBER,
        "+85251234567",
        "+819012345678",
        "+6838884012",
        "+6907290",  # Tokelau: 4-digit national number
        "+29051234",  # St Helena: 5-digit national mobile number (valid per phonenumbers)
        "+376312345",  # Andorra: 6 digits
    ],
)
def test_mask_never_shows_the_whole_number(e164: str) -> None:
    """A mask that shows every digit is no mask: at least one digit must be hidden."""
    national = str(phonenumbers.parse(e164).national_number)
    masked = mask_phone(e164)
    visible = _visible_digits(masked)
    assert "*" in masked
    assert len(visible) < len(national)
    assert len(visible) <= 3 + 4


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "abc",
        "+",
        "+1",
        "+86",
        "12",
        "+8612345",
        "12345678",
        "garbage12345678901234",
        "+999123456789",
        "+8613800138000000000",
        "1" * 40,
    ],
)
def test_mask_of_odd_input_shows_at_most_head_and_last_four(raw: str) -> None:
    """Logs may see garbage; masking it must not raise or echo long digit runs back."""
    masked = mask_phone(raw)
    digits = re.sub(r"\D", "", raw)
    visible = _visible_digits(masked)
    assert len(visible) <= 3 + 4
    if len(digits) >= 8:  # long enough to show the last four and still hide the middle
        assert visible[-4:] == digits[-4:]
    if len(digits) > 4:
        assert "*" in masked and len(visible) < len(digits)


def test_provider_phone_mainland_is_eleven_digits() -> None:
    assert provider_phone(E164) == "13800138000"


@pytest.mark.parametrize(
    ("e164", "expected"),
    [
        (GB_MOBILE, "447400123456"),
        (US_NUMBER, "12015550123"),
        ("+85251234567", "85251234567"),
    ],
)
def test_provider_phone_international_keeps_country_code(e164: str, expected: str) -> None:
    """Alibaba Cloud takes international numbers as country code + number, without '+'."""
    assert provider_phone(e164) == expected
