"""The signer's percent-encoding (flask_smscode/aliyun/encoding.py) is byte-identical to
urllib's, which the SDK's signer uses: otherwise every signature would change. Compared over
generated text, and then end to end: the loopback server checks the signature of a
1000-number SendSms, and the SDK's own signer is left on urllib."""

from __future__ import annotations

import urllib.parse
import urllib.request

from hypothesis import given, settings
from hypothesis import strategies as st

from flask_smscode import AliyunSms
from flask_smscode.aliyun import encoding
from tests.helpers import ACCESS_KEY_ID, ACCESS_KEY_SECRET

texts = st.text(max_size=60) | st.sampled_from(
    ["", " ", "+86 138,139", "a b+c*d~e%7E", "张三", "😀/x?y=z&w", "-_.~", "\x00\x7f\u2028"]
)


@settings(max_examples=400, deadline=None)
@given(texts, st.sampled_from(["", "/", " ", "/ ", "=&"]))
def test_quote_and_quote_plus_match_urllib(text: str, safe: str) -> None:
    assert encoding.quote(text, safe) == urllib.parse.quote(text, safe)
    assert encoding.quote_plus(text, safe) == urllib.parse.quote_plus(text, safe)
    raw = text.encode("utf-8")
    assert encoding.quote(raw, safe) == urllib.parse.quote(raw, safe)
    assert encoding.quote_plus(raw, safe) == urllib.parse.quote_plus(raw, safe)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(texts, texts | st.integers()), max_size=8))
def test_urlencode_and_pathname2url_match_urllib(pairs: list[tuple[str, object]]) -> None:
    assert encoding.urlencode(pairs) == urllib.parse.urlencode(pairs)
    assert encoding.urlencode(dict(pairs)) == urllib.parse.urlencode(dict(pairs))
    query = urllib.parse.urlencode(pairs)
    assert encoding.pathname2url(query) == urllib.request.pathname2url(query)


def test_a_1000_number_send_is_signed_as_before(sms_server) -> None:
    """The package's signer (C-speed encoding) signs a SendSms whose PhoneNumbers holds 999
    commas and whose params are Chinese as the server (its own encoder) does, and the SDK's
    signer still uses urllib afterwards: nothing was installed into it."""
    sms = AliyunSms(
        ACCESS_KEY_ID,
        ACCESS_KEY_SECRET,
        "TestSign",
        endpoint=sms_server.endpoint,
        protocol="http",
        timeout=5,
    )
    phones = [f"138{i:08d}" for i in range(1000)]
    [answer] = sms.send_message(phones, {"name": "张三 李四", "time": "22:00"}, "SMS_NOTIFY")
    assert answer.ok
    [request] = [r for r in sms_server.requests if r.action == "SendSms"]
    assert request.signature_ok
    assert len(sms_server.sent[0].phones) == 1000
    from aliyunsdkcore.auth.composer import rpc_signature_composer

    assert rpc_signature_composer.urlencode is urllib.parse.urlencode
    assert rpc_signature_composer.pathname2url is urllib.request.pathname2url


@settings(max_examples=300, deadline=None)
@given(texts)
def test_percent_encode_is_the_sdk_value_encoding(text: str) -> None:
    """One value as the SDK's composer encodes it: urlencode's quote_plus, then its
    ``+`` -> ``%20``, ``*`` -> ``%2A``, ``%7E`` -> ``~`` fix-up."""
    sdk = urllib.parse.quote_plus(text).replace("+", "%20").replace("*", "%2A")
    assert encoding.percent_encode(text) == sdk.replace("%7E", "~")
