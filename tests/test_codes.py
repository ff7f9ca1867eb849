"""Code generation, the well-formedness gate, and the keyed hash that is all a store keeps."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from flask_smscode.codes import codes_match, generate_code, hash_code, is_well_formed

SECRET = b"test-secret"
PHONE = "+8613800138000"


@pytest.mark.parametrize("length", [4, 6, 8, 10])
def test_generated_codes_have_the_requested_length_of_ascii_digits(length: int) -> None:
    for _ in range(200):
        code = generate_code(length)
        assert len(code) == length
        assert set(code) <= set("0123456789")
        assert code.isascii()


def test_default_length_is_six() -> None:
    assert len(generate_code()) == 6


def test_every_digit_appears_in_every_position() -> None:
    """Codes are strings, not ints: leading zeros must survive, and no position is biased.

    With 3000 six-digit codes, a digit missing from a position has probability ~10 * 0.9**3000,
    so a failure means the generator is wrong, not unlucky.
    """
    codes = [generate_code(6) for _ in range(3000)]
    assert all(len(code) == 6 for code in codes)
    for position in range(6):
        seen = {code[position] for code in codes}
        assert seen == set("0123456789"), f"position {position} only saw {sorted(seen)}"
    assert any(code.startswith("0") for code in codes)


def test_codes_are_not_repeated_in_a_small_sample() -> None:
    """A stuck or badly seeded generator would repeat; 200 eight-digit codes almost never do."""
    codes = {generate_code(8) for _ in range(200)}
    assert len(codes) >= 198


@pytest.mark.parametrize("code", ["000000", "123456", "999999", "012345"])
def test_well_formed_accepts_ascii_digits_of_the_length(code: str) -> None:
    assert is_well_formed(code, 6)


@pytest.mark.parametrize(
    "code",
    [
        "١٢٣٤٥٦",  # Arabic-Indic digits: str.isdigit() and int() accept them
        "۱۲۳۴۵۶",  # Extended Arabic-Indic (Persian)
        "１２３４５６",  # full-width digits
        "¹²³⁴⁵⁶",  # superscripts: isdigit() is True
        "१२३४५६",  # Devanagari
        "12345６",  # one full-width digit
        " 123456",
        "123456 ",
        "12345\n",
        "123 45",
        "+12345",
        "-12345",
        "+123456",
        "12345.",
        "1e5000",
        "12345",
        "1234567",
        "",
        "abcdef",
        "0x1234",
        "1_2345",
    ],
)
def test_well_formed_rejects_everything_else(code: str) -> None:
    assert not is_well_formed(code, 6)


@pytest.mark.parametrize("code", [123456, 12345.6, None, b"123456", ["123456"], {"1": 2}, True])
def test_well_formed_rejects_non_strings(code: object) -> None:
    assert not is_well_formed(code, 6)


def test_well_formed_respects_the_configured_length() -> None:
    assert is_well_formed("1234", 4)
    assert not is_well_formed("1234", 6)
    assert is_well_formed("0123456789", 10)


def test_hash_code_is_hex_hmac_sha256() -> None:
    digest = hash_code(SECRET, PHONE, "login", "123456")
    assert len(digest) == 64
    int(digest, 16)
    assert digest == hash_code(SECRET, PHONE, "login", "123456")  # deterministic
    expected = hmac.new(SECRET, f"{PHONE}\x1flogin\x1f123456".encode(), hashlib.sha256)
    assert digest == expected.hexdigest()


@pytest.mark.parametrize("change", ["secret", "phone", "purpose", "code"])
def test_hash_code_binds_every_input(change: str) -> None:
    """A code for one phone, purpose or app must never verify for another."""
    args = {"secret": SECRET, "phone": PHONE, "purpose": "login", "code": "123456"}
    other = dict(args)
    other[change] = {
        "secret": b"other-secret",
        "phone": "+8613900139000",
        "purpose": "signup",
        "code": "123457",
    }[change]
    assert hash_code(**args) != hash_code(**other)


def test_hash_code_fields_cannot_be_shifted_into_each_other() -> None:
    """Moving characters between purpose and code must change the hash (fields are delimited)."""
    shifted = hash_code(SECRET, PHONE, "login1", "23456")
    assert shifted != hash_code(SECRET, PHONE, "login", "123456")


@pytest.mark.parametrize("code", ["123456", "000000", "987654"])
def test_hash_never_contains_the_code(code: str) -> None:
    """A Redis dump must not reveal the code, even as a substring of its hash."""
    for purpose in ("login", "signup", "reset_password"):
        assert code not in hash_code(SECRET, PHONE, purpose, code)


def test_a_bare_sha256_of_the_code_is_not_what_is_stored() -> None:
    """An unkeyed hash of a 6-digit code is reversed by enumerating a million candidates."""
    digest = hash_code(SECRET, PHONE, "login", "123456")
    assert digest != hashlib.sha256(b"123456").hexdigest()
    assert digest != hashlib.sha256(f"{PHONE}\x1flogin\x1f123456".encode()).hexdigest()


def test_codes_match_compares_hashes() -> None:
    digest = hash_code(SECRET, PHONE, "login", "123456")
    assert codes_match(digest, hash_code(SECRET, PHONE, "login", "123456"))
    assert not codes_match(digest, hash_code(SECRET, PHONE, "login", "123457"))
    assert not codes_match(digest, digest[:-1])
    assert not codes_match(digest, "")
    assert not codes_match(digest, digest.upper())
    assert codes_match("", "")


def test_codes_match_accepts_non_ascii_without_raising() -> None:
    """hmac.compare_digest refuses non-ASCII str; the wrapper encodes first, so it must not."""
    assert not codes_match("a" * 64, "é" * 64)
    assert codes_match("é", "é")
