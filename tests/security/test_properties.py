"""Properties, checked with Hypothesis: the phone normaliser (idempotent, one E.164 per number
whatever the spelling, only the package's own errors), the code checker (well-formedness,
hash binding, comparison) and the request parser (any body to either endpoint: never a 5xx,
always a JSON answer with a documented ``error``)."""

from __future__ import annotations

import json
import string
from typing import Any

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from flask_smscode import SmsCodeError
from flask_smscode.codes import codes_match, generate_code, hash_code, is_well_formed
from flask_smscode.phones import normalize_phone
from tests.security.support import ERROR_CODES

EXAMPLES = 300  # per property of a function; the counts are stated in README, Security
HTTP_EXAMPLES = 200  # per property over HTTP (and per store)
INVISIBLE = (
    "\u200b\u200c\u200d\u2060\ufeff\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2066\u2067\u2068\u2069"
)
FULLWIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}


@st.composite
def mainland_mobiles(draw: Any) -> str:
    """An 11-digit national number phonenumbers calls a valid mainland mobile."""
    head = draw(
        st.sampled_from(
            [
                "130",
                "131",
                "132",
                "133",
                "135",
                "136",
                "137",
                "138",
                "139",
                "150",
                "151",
                "152",
                "155",
                "156",
                "157",
                "158",
                "159",
                "166",
                "170",
                "176",
                "177",
                "178",
                "180",
                "181",
                "182",
                "183",
                "185",
                "186",
                "187",
                "188",
                "189",
                "191",
                "198",
                "199",
            ]
        )
    )
    number = head + draw(st.text(string.digits, min_size=8, max_size=8))
    parsed = phonenumbers.parse(number, "CN")
    assume(
        phonenumbers.is_valid_number(parsed)
        and phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE
    )
    return number


@st.composite
def spellings(draw: Any, national: str) -> str:
    """One of the ways people write (or paste) ``national``."""
    digits = list(national)
    for i in range(len(digits) - 1, 0, -1):  # separators between digit groups
        sep = draw(st.sampled_from(["", "", "", " ", "-", ".", "\t", "\u3000"]))
        digits.insert(i, sep)
    text = "".join(FULLWIDTH[c] if c in FULLWIDTH and draw(st.booleans()) else c for c in digits)
    prefix = draw(
        st.sampled_from(["", "+86", "+86 ", "0086", "0086 ", "86", "(+86) ", "+86-", "\uff0b86 "])
    )
    text = prefix + text
    # Invisible marks anywhere (the zero-width family), and a bidi wrap around the whole.
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(INVISIBLE)) + text[at:]
    wrap = draw(st.sampled_from(["", "\u202a\u202c", "\u2066\u2069", "\u200e\u200e", "  "]))
    if wrap:
        text = wrap[0] + text + wrap[1]
    assume(len(text) <= 64)
    return text


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.data())
def test_every_spelling_of_a_number_is_one_e164(data):
    national = data.draw(mainland_mobiles())
    spelled = data.draw(spellings(national))
    assert normalize_phone(spelled) == "+86" + national


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    st.one_of(
        st.text(
            alphabet=string.digits + " +-().\t" + INVISIBLE + "".join(FULLWIDTH.values()),
            max_size=40,
        ),
        st.text(max_size=80),
    )
)
@example("13800138000\u200b")
@example("\u202a+86 138 0013 8000\u202c")
def test_normalising_is_idempotent_and_raises_only_package_errors(text):
    for regions in (("CN",), None):
        try:
            once = normalize_phone(text, "CN", regions)
        except SmsCodeError:
            continue  # the package's own refusal (invalid_phone, region_not_allowed)
        assert once.startswith("+") and once[1:].isdigit() and once.isascii()
        assert normalize_phone(once, "CN", regions) == once


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    st.one_of(
        st.none(),
        st.integers(),
        st.floats(),
        st.binary(),
        st.lists(st.text()),
        st.dictionaries(st.text(), st.text()),
    )
)
def test_non_text_phones_are_refused_with_the_package_error(value):
    with pytest.raises(SmsCodeError):
        normalize_phone(value)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    st.one_of(st.text(max_size=12), st.integers(), st.none(), st.binary(max_size=12)),
    st.integers(4, 10),
)
def test_only_ascii_digits_of_the_length_are_a_code(value, length):
    expected = (
        isinstance(value, str) and len(value) == length and all(c in string.digits for c in value)
    )
    assert is_well_formed(value, length) is expected


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.integers(4, 10))
def test_generated_codes_are_well_formed(length):
    assert is_well_formed(generate_code(length), length)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    st.binary(min_size=16, max_size=32),
    st.tuples(st.text(max_size=16), st.text(max_size=12), st.text(string.digits, max_size=8)),
    st.tuples(st.text(max_size=16), st.text(max_size=12), st.text(string.digits, max_size=8)),
)
def test_a_code_hash_binds_phone_purpose_and_code(secret, one, other):
    first = hash_code(secret, *one)
    assert first == hash_code(secret, *one) and codes_match(first, hash_code(secret, *one))
    if one != other:
        assert not codes_match(first, hash_code(secret, *other))
    assert not codes_match(first, hash_code(secret[::-1] + b"x", *one))


# -- the request parser, over HTTP (test client) ----------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELD_VALUES = st.one_of(
    JSON_VALUES,
    st.sampled_from(
        ["13800138000", "+86 138 0013 8000", "123456", "login", "signup", "", "\u200b"]
    ),
)
JSON_BODIES = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "phone": FIELD_VALUES,
            "code": FIELD_VALUES,
            "purpose": FIELD_VALUES,
            "extra": FIELD_VALUES,
        },
    ),
    JSON_VALUES,
)
FORM_BODIES = st.lists(
    st.tuples(st.sampled_from(["phone", "code", "purpose", "x"]), st.text(max_size=30)), max_size=6
)


def _check(response) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)
    body = json.loads(response.get_data(as_text=True))
    assert isinstance(body, dict)
    if response.status_code == 200:
        assert body["ok"] is True
    else:
        assert body["ok"] is False and body["error"] in ERROR_CODES


@pytest.fixture
def parser_client(make_app):
    """No throttle in the way: the parser is what is under test (codes that go out reach the
    loopback server, so the secrets watch checks them too)."""
    app = make_app(
        SMSCODE_RESEND_INTERVAL_SECONDS=0,
        SMSCODE_PHONE_LIMITS="100000/hour",
        SMSCODE_IP_SEND_LIMITS="100000/hour",
        SMSCODE_IP_VERIFY_LIMITS="100000/hour",
    )
    return app.test_client()


@settings(
    max_examples=HTTP_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(endpoint=st.sampled_from(["send", "verify"]), body=JSON_BODIES)
def test_any_json_body_gets_a_documented_json_answer(parser_client, endpoint, body):
    _check(parser_client.post(f"/sms/{endpoint}", json=body))


@settings(
    max_examples=HTTP_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(endpoint=st.sampled_from(["send", "verify"]), fields=FORM_BODIES, multipart=st.booleans())
def test_any_form_body_gets_a_documented_json_answer(parser_client, endpoint, fields, multipart):
    from werkzeug.datastructures import MultiDict

    kwargs: dict[str, Any] = {"data": MultiDict(fields)}
    if multipart:
        kwargs["content_type"] = "multipart/form-data"
    _check(parser_client.post(f"/sms/{endpoint}", **kwargs))


@settings(
    max_examples=HTTP_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    endpoint=st.sampled_from(["send", "verify"]),
    raw=st.binary(max_size=200),
    content_type=st.sampled_from(
        [
            "application/json",
            "text/plain",
            "application/xml",
            "application/x-www-form-urlencoded",
            "application/merge-patch+json",
            "",
        ]
    ),
)
def test_any_raw_body_gets_a_documented_json_answer(parser_client, endpoint, raw, content_type):
    _check(parser_client.post(f"/sms/{endpoint}", data=raw, content_type=content_type))
