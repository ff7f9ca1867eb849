"""Verified-phone tokens: what a signed token proves, and everything that must not load.

A login view trusts the token instead of re-checking the code, so anything not issued by
this app with this secret, or too old, must raise ``InvalidToken``.
"""

from __future__ import annotations

import base64
import json
import os
import time
import zlib

import pytest

from flask_smscode.errors import InvalidToken
from flask_smscode.tokens import TokenSigner, VerifiedPhone

SECRET = b"token-test-secret"
PHONE = "+8613800138000"


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner(SECRET, max_age=600)


def payload_of(token: str) -> dict[str, str]:
    """Decode the (unencrypted) payload of an itsdangerous token.

    The payload is base64 JSON, zlib-compressed (marked by a leading ".") when that is
    shorter, which happens for some random ids.
    """
    payload, _timestamp, _signature = token.rsplit(".", 2)
    compressed = payload.startswith(".")
    data = base64.urlsafe_b64decode(payload.lstrip(".") + "=" * (-len(payload.lstrip(".")) % 4))
    return json.loads(zlib.decompress(data) if compressed else data)


def test_round_trip(signer: TokenSigner) -> None:
    token = signer.issue(PHONE, "login")
    assert isinstance(token, str)
    loaded = signer.load(token)
    assert isinstance(loaded, VerifiedPhone)
    assert (loaded.phone, loaded.purpose) == (PHONE, "login")
    assert len(loaded.token_id) == 32
    int(loaded.token_id, 16)


@pytest.mark.parametrize(
    "purpose", ["login", "x" * 64, 'a "quoted" \\ 用途']
)  # dumps() would compress the 2nd; the 3rd needs escaping
def test_issue_signs_as_itsdangerous(
    signer: TokenSigner, purpose: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue() signs without itsdangerous' per-call signer and skips its zlib step (speed):
    the token must be json.dumps' payload, uncompressed, signed by itsdangerous' own
    TimestampSigner at the same second (the JSON is written without an encoder: same text),
    and load."""
    import os

    from itsdangerous.encoding import base64_encode

    fixed = bytes(range(16))
    monkeypatch.setattr(os, "urandom", lambda n: fixed[:n])
    monkeypatch.setattr(time, "time", lambda: 1_763_800_000.5)
    body = {"phone": PHONE, "purpose": purpose, "id": fixed.hex()}
    payload = base64_encode(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())
    expected = signer._serializer.make_signer().sign(payload).decode()
    assert signer.issue(PHONE, purpose) == expected
    assert payload_of(expected) == body
    assert signer.load(expected).purpose == purpose


def test_each_token_has_its_own_id(signer: TokenSigner) -> None:
    """The id is what single use is recorded under; two verifies must not share one."""
    ids = {signer.load(signer.issue(PHONE, "login")).token_id for _ in range(50)}
    assert len(ids) == 50


def test_token_is_url_safe(signer: TokenSigner) -> None:
    token = signer.issue(PHONE, "login")
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_payload_is_readable_but_signed(signer: TokenSigner) -> None:
    """itsdangerous signs, it does not encrypt: whoever holds the token can read the phone.

    That is acceptable for a token handed to the same user who typed the number, but it
    must not be put in URLs or logs as if it were opaque.
    """
    token = signer.issue(PHONE, "login")
    payload = payload_of(token)
    assert payload["phone"] == PHONE
    assert payload["purpose"] == "login"
    assert payload["id"] == signer.load(token).token_id


def issue_until(signer: TokenSigner, *, compressed: bool) -> str:
    """A token whose payload is (or is not) zlib-compressed. issue() never compresses;
    itsdangerous' dumps() does when it saves bytes (about 6% of ids), and such tokens (from
    earlier releases) must still load."""
    if not compressed:
        return signer.issue(PHONE, "login")
    for _ in range(2000):
        token = signer._serializer.dumps(
            {"phone": PHONE, "purpose": "login", "id": os.urandom(16).hex()}
        )
        if token.startswith("."):
            return token
    raise AssertionError("no token of the wanted form in 2000 tries")


def test_compressed_tokens_round_trip_and_stay_readable(signer: TokenSigner) -> None:
    token = issue_until(signer, compressed=True)
    assert signer.load(token).phone == PHONE
    assert payload_of(token)["phone"] == PHONE  # compression is not encryption


def test_tampered_payload_is_refused(signer: TokenSigner) -> None:
    token = issue_until(signer, compressed=False)
    untouched = (
        base64.urlsafe_b64encode(json.dumps(payload_of(token), separators=(",", ":")).encode())
        .decode()
        .rstrip("=")
    )
    # Control: the same payload re-encoded uncompressed still verifies, so the refusal
    # below is caused by the changed phone, not by the re-encoding.
    assert signer.load(untouched + "." + ".".join(token.rsplit(".", 2)[1:])).phone == PHONE
    payload = payload_of(token)
    payload["phone"] = "+8613900139000"
    forged_part = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
    forged = forged_part.decode().rstrip("=") + "." + ".".join(token.rsplit(".", 2)[1:])
    with pytest.raises(InvalidToken):
        signer.load(forged)


@pytest.mark.parametrize("where", [0, 10, -20])
def test_flipped_character_is_refused(signer: TokenSigner, where: int) -> None:
    """Any changed character (payload, timestamp or signature) breaks the signature.

    The very last character is left out: it carries base64 padding bits, so some changes
    to it decode to the same signature bytes (itsdangerous accepts those, harmlessly).
    """
    token = signer.issue(PHONE, "login")
    chars = list(token)
    chars[where] = "B" if chars[where] == "A" else "A"
    tampered = "".join(chars)
    assert tampered != token
    with pytest.raises(InvalidToken):
        signer.load(tampered)


def test_truncated_or_extended_token_is_refused(signer: TokenSigner) -> None:
    token = signer.issue(PHONE, "login")
    for bad in (token[:-2], token + "x", token.split(".")[0], token.replace(".", "", 1)):
        with pytest.raises(InvalidToken):
            signer.load(bad)


def test_token_from_another_secret_is_refused(signer: TokenSigner) -> None:
    foreign = TokenSigner(b"another-app-secret", max_age=600).issue(PHONE, "login")
    with pytest.raises(InvalidToken):
        signer.load(foreign)


def test_expired_token_is_refused() -> None:
    signer = TokenSigner(SECRET, max_age=1)
    token = signer.issue(PHONE, "login")
    assert signer.load(token).phone == PHONE  # fresh: fine
    # itsdangerous stamps whole seconds and refuses when age > max_age: wait until age >= 2.
    issued_at_latest = int(time.time())
    time.sleep(issued_at_latest + 2 - time.time() + 0.02)
    with pytest.raises(InvalidToken) as info:
        signer.load(token)
    assert "expired" in info.value.message
    # The age is checked by the loader's max_age, so a more lenient signer still accepts it.
    assert TokenSigner(SECRET, max_age=600).load(token).phone == PHONE


@pytest.mark.parametrize("token", [None, 123, 1.5, b"abc.def.ghi", ["a.b.c"], {"t": 1}, ""])
def test_non_strings_and_empty_are_refused(signer: TokenSigner, token: object) -> None:
    with pytest.raises(InvalidToken):
        signer.load(token)


def test_bytes_of_a_valid_token_are_refused(signer: TokenSigner) -> None:
    """Only str reaches a view from JSON; bytes mean someone bypassed the parser."""
    token = signer.issue(PHONE, "login")
    with pytest.raises(InvalidToken):
        signer.load(token.encode())


@pytest.mark.parametrize("size", [1025, 10_000, 1_000_000])
def test_huge_input_is_refused_before_parsing(signer: TokenSigner, size: int) -> None:
    with pytest.raises(InvalidToken):
        signer.load("a" * size)


def test_valid_token_padded_past_the_limit_is_refused(signer: TokenSigner) -> None:
    token = signer.issue(PHONE, "login")
    with pytest.raises(InvalidToken):
        signer.load(token + " " * 1024)


@pytest.mark.parametrize(
    "payload", [[1, 2], "phone", 5, None, {"phone": PHONE}, {"phone": PHONE, "purpose": "login"}]
)
def test_signed_payload_of_the_wrong_shape_is_refused(payload: object) -> None:
    """Even a correctly signed payload must carry phone, purpose and id."""
    from itsdangerous import URLSafeTimedSerializer

    serializer = URLSafeTimedSerializer(SECRET, salt="flask-smscode.verified-phone")
    with pytest.raises(InvalidToken):
        TokenSigner(SECRET, max_age=600).load(serializer.dumps(payload))


def test_same_secret_other_salt_is_refused() -> None:
    """Other itsdangerous users of SECRET_KEY (e.g. Flask sessions) must not mint tokens."""
    from itsdangerous import URLSafeTimedSerializer

    other = URLSafeTimedSerializer(SECRET, salt="itsdangerous").dumps(
        {"phone": PHONE, "purpose": "login", "id": "0" * 32}
    )
    with pytest.raises(InvalidToken):
        TokenSigner(SECRET, max_age=600).load(other)
