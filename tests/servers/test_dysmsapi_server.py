"""Tests of the fake Dysmsapi server, driven through the real aliyunsdkcore client (no mocks).

Why: every other test trusts this server to behave like Alibaba Cloud SMS; these tests pin the
protocol details (signature, nonce, timestamp, error shapes) and document what the SDK really
raises for each kind of failure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.auth.composer import rpc_signature_composer
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.http import protocol_type
from aliyunsdkcore.request import CommonRequest, RpcRequest

from tests.servers.dysmsapi_server import (
    _COMMON_REQUIRED,
    CHINA_TZ,
    DysmsapiServer,
    encode_query,
    sign,
    signed_params,
    string_to_sign,
)

PHONE = "13800138000"
GOOD: dict[str, str] = {
    "PhoneNumbers": PHONE,
    "SignName": "TestSign",
    "TemplateCode": "SMS_LOGIN",
    "TemplateParam": '{"code":"123456"}',
}
REQUEST_ID_RE = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$")
NO_PROXY = {"http": None, "https": None}


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def server() -> Iterator[DysmsapiServer]:
    with DysmsapiServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean(server: DysmsapiServer) -> Iterator[None]:
    server.reset()
    yield
    assert server.errors == []  # no server-side bug during the test


def make_client(
    key_id: str = "test-key-id", secret: str = "test-key-secret", timeout: float = 2
) -> AcsClient:
    return AcsClient(
        key_id,
        secret,
        "cn-hangzhou",
        auto_retry=False,
        timeout=timeout,
        connect_timeout=1,
        proxy=NO_PROXY,
    )


@pytest.fixture(scope="module")
def client() -> AcsClient:
    return make_client()


def make_request(
    endpoint: str, action: str = "SendSms", method: str = "POST", **params: str
) -> CommonRequest:
    req = CommonRequest(domain=endpoint, version="2017-05-25", action_name=action)
    req.set_method(method)
    req.set_protocol_type(protocol_type.HTTP)
    req.set_accept_format("json")
    for key, value in params.items():
        req.add_query_param(key, value)
    return req


def call(client: AcsClient, server: DysmsapiServer, action: str = "SendSms", **params: str) -> Any:
    body = client.do_action_with_exception(make_request(server.endpoint, action, **params))
    assert isinstance(body, bytes)
    return json.loads(body)


def send(client: AcsClient, server: DysmsapiServer, **overrides: str) -> dict[str, Any]:
    return call(client, server, "SendSms", **{**GOOD, **overrides})


def raw(
    server: DysmsapiServer,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """One request without the SDK (http.client never consults proxy settings)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=2)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def raw_signed(
    server: DysmsapiServer, action: str, params: dict[str, str], **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    signed = signed_params(action, params, method="GET", **kwargs)
    return raw(server, "GET", "/?" + encode_query(signed))


# --------------------------------------------------------------------------- signature

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def independent_signature(method: str, params: dict[str, str], secret: str) -> str:
    """The algorithm written out byte by byte, sharing no code with the server."""

    def pe(text: str) -> str:
        return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in text.encode("utf-8"))

    pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
    canonical = "&".join(pe(k) + "=" + pe(v) for k, v in pairs)
    to_sign = method + "&%2F&" + pe(canonical)
    mac = hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


VECTOR = {
    "AccessKeyId": "test-key-id",
    "Action": "SendSms",
    "Format": "JSON",
    "PhoneNumbers": "13800138000",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureType": "",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_123456789",
    "TemplateParam": '{"code":"1234 *~/+="}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
VECTOR_SIGNATURE = "0NkZfDuQaO/dl7iyBjscpV3gwds="


def test_signature_fixed_vector() -> None:
    assert independent_signature("GET", VECTOR, "test-key-secret") == VECTOR_SIGNATURE
    assert sign("GET", VECTOR, "test-key-secret") == VECTOR_SIGNATURE
    # Signature itself is never signed; method matters; empty values are kept.
    assert sign("GET", {**VECTOR, "Signature": "x"}, "test-key-secret") == VECTOR_SIGNATURE
    assert sign("POST", VECTOR, "test-key-secret") != VECTOR_SIGNATURE
    without_empty = {k: v for k, v in VECTOR.items() if k != "SignatureType"}
    assert sign("GET", without_empty, "test-key-secret") != VECTOR_SIGNATURE
    sts = string_to_sign("GET", VECTOR)
    assert sts.startswith("GET&%2F&AccessKeyId%3Dtest-key-id%26Action%3DSendSms")
    # space -> %20, * -> %2A, ~ kept, then the whole canonical string encoded once more
    assert "1234%2520%252A~%252F%252B%253D" in sts
    assert "SignatureType%3D%26" in sts


def test_signature_matches_alibaba_documented_example() -> None:
    """The worked example of Alibaba's SMS signature documentation (Format=XML, GET)."""
    params = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert independent_signature("GET", params, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert sign("GET", params, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_sdk_signed_url_validates(method: str) -> None:
    url, sdk_sts = rpc_signature_composer.get_signed_url(
        {**GOOD, "Action": "SendSms", "Version": "2017-05-25", "RegionId": "cn-hangzhou"},
        "test-key-id",
        "test-key-secret",
        "JSON",
        method,
        {"OutId": "a b*~é"},  # body params are signed too
    )
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    assert query["SignatureType"] == ""
    params = {**query, "OutId": "a b*~é"}
    assert string_to_sign(method, params) == sdk_sts
    assert independent_signature(method, params, "test-key-secret") == query["Signature"]
    assert sign(method, params, "test-key-secret") == query["Signature"]


def test_sdk_request_is_recorded_with_valid_signature(
    server: DysmsapiServer, client: AcsClient
) -> None:
    send(client, server)
    (req,) = server.requests
    assert req.signature_ok and req.status == 200 and req.code == "OK"
    assert req.method == "POST" and req.action == "SendSms" and req.body == b""
    assert req.access_key_id == "test-key-id"
    assert independent_signature("POST", req.params, "test-key-secret") == req.params["Signature"]


# --------------------------------------------------------------------------- SendSms success


def test_send_sms_accepted_and_recorded(server: DysmsapiServer, client: AcsClient) -> None:
    before = datetime.now(CHINA_TZ)
    answer = send(client, server, OutId="order-42")
    assert answer["Code"] == "OK" and answer["Message"] == "OK"
    assert re.fullmatch(r"\d+\^0", answer["BizId"])
    assert REQUEST_ID_RE.match(answer["RequestId"])
    (sms,) = server.sent
    assert sms.phone_numbers == [PHONE] and sms.phones == [PHONE]
    assert sms.sign_name == "TestSign" and sms.template_code == "SMS_LOGIN"
    assert sms.template_param == {"code": "123456"}
    assert sms.out_id == "order-42"
    assert sms.biz_id == answer["BizId"] and sms.request_id == answer["RequestId"]
    assert sms.access_key_id == "test-key-id"
    assert sms.send_date.utcoffset() == timedelta(hours=8)
    assert before - timedelta(seconds=1) <= sms.send_date <= datetime.now(CHINA_TZ)
    assert sms.content == "【TestSign】您的登录验证码为123456，5分钟内有效，请勿泄露。"
    for form in (PHONE, "+86" + PHONE, "86" + PHONE):
        assert server.last_code(form) == "123456"


def test_last_code_returns_newest_and_raises_lookup_error(
    server: DysmsapiServer, client: AcsClient
) -> None:
    with pytest.raises(LookupError):
        server.last_code(PHONE)
    send(client, server, TemplateParam='{"code":"111111"}')
    send(client, server, PhoneNumbers=f"13900139000,+86{PHONE}", TemplateParam='{"code":"222"}')
    assert server.last_code(PHONE) == "222"
    assert server.last_code("13900139000") == "222"
    assert server.sent[-1].phone_numbers == ["13900139000", "+8613800138000"]
    assert server.sent[-1].phones == ["13900139000", PHONE]
    with pytest.raises(LookupError):
        server.last_code(PHONE, "nope")
    with pytest.raises(LookupError):
        server.last_code("13700137000")


def test_get_method_and_form_body_are_accepted(server: DysmsapiServer, client: AcsClient) -> None:
    assert call(client, server, "SendSms", method="GET", **GOOD)["Code"] == "OK"
    req = make_request(server.endpoint, PhoneNumbers=PHONE)
    for key in ("SignName", "TemplateCode", "TemplateParam"):
        req.add_body_params(key, GOOD[key])  # SDK sends these form-encoded, signed
    assert json.loads(client.do_action_with_exception(req))["Code"] == "OK"
    assert [r.method for r in server.requests] == ["GET", "POST"]
    assert server.requests[1].body and server.requests[1].params["SignName"] == "TestSign"
    assert len(server.sent) == 2


@pytest.mark.parametrize(
    "numbers",
    [
        "+8613800138000",
        "8613800138000",
        "008613800138000",
        "14155552671",  # 11 digits starting with 1: taken as mainland
        ",".join(f"138{i:08d}" for i in range(1000)),
    ],
)
def test_accepted_phone_numbers(server: DysmsapiServer, client: AcsClient, numbers: str) -> None:
    assert send(client, server, PhoneNumbers=numbers)["Code"] == "OK"
    assert server.sent[0].phone_numbers == numbers.split(",")


@pytest.mark.parametrize(
    "numbers",
    [
        "85291234567",  # Hong Kong, country code + number
        "447911123456",  # UK
        "14155552671",  # with an international template: the US, not the mainland
    ],
)
def test_international_numbers_need_an_international_template(
    server: DysmsapiServer, client: AcsClient, numbers: str
) -> None:
    assert send(client, server, PhoneNumbers=numbers, TemplateCode="SMS_INTL_CODE")["Code"] == "OK"
    assert server.sent[0].phone_numbers == [numbers]
    if numbers != "14155552671":  # domestic template: the two kinds cannot be mixed
        assert send(client, server, PhoneNumbers=numbers)["Code"] == "isv.SMS_TEMPLATE_ILLEGAL"
    answer = send(client, server, PhoneNumbers="8613800138000", TemplateCode="SMS_INTL_CODE")
    assert answer["Code"] == "isv.DOMESTIC_NUMBER_NOT_SUPPORTED"
    assert len(server.sent) == 1


def test_custom_accounts_sign_names_and_templates() -> None:
    with DysmsapiServer(
        {"k1": "s1", "k2": "s2"}, sign_names={"Mine"}, templates={"SMS_X": ["a"]}
    ) as srv:
        for key, secret in (("k1", "s1"), ("k2", "s2")):
            answer = send(
                make_client(key, secret),
                srv,
                SignName="Mine",
                TemplateCode="SMS_X",
                TemplateParam='{"a":"1"}',
            )
            assert answer["Code"] == "OK"
        assert [s.access_key_id for s in srv.sent] == ["k1", "k2"]
        assert srv.last_code(PHONE, "a") == "1"
        assert send(make_client("k1", "s1"), srv)["Code"] == "isv.SMS_SIGNATURE_ILLEGAL"


# --------------------------------------------------------------------------- SendSms validation


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"PhoneNumbers": ",".join([PHONE] * 1001)}, "isv.MOBILE_COUNT_OVER_LIMIT"),
        ({"PhoneNumbers": "1380013800"}, "isv.MOBILE_NUMBER_ILLEGAL"),
        ({"PhoneNumbers": "138001380000"}, "isv.MOBILE_NUMBER_ILLEGAL"),
        ({"PhoneNumbers": "1380013800a"}, "isv.MOBILE_NUMBER_ILLEGAL"),
        ({"PhoneNumbers": "03800138000"}, "isv.MOBILE_NUMBER_ILLEGAL"),
        ({"PhoneNumbers": "+1380013800"}, "isv.MOBILE_NUMBER_ILLEGAL"),
        ({"PhoneNumbers": "86123"}, "isv.MOBILE_NUMBER_ILLEGAL"),
        ({"PhoneNumbers": f"{PHONE},"}, "isv.MOBILE_NUMBER_ILLEGAL"),
        ({"PhoneNumbers": f"{PHONE}, 13900139000"}, "isv.MOBILE_NUMBER_ILLEGAL"),
        ({"SignName": "Unknown"}, "isv.SMS_SIGNATURE_ILLEGAL"),
        ({"TemplateCode": "SMS_000"}, "isv.SMS_TEMPLATE_ILLEGAL"),
        ({"TemplateParam": "{code: 1}"}, "isv.INVALID_JSON_PARAM"),
        ({"TemplateParam": '["123456"]'}, "isv.INVALID_JSON_PARAM"),
        ({"TemplateParam": '{"code": 123456}'}, "isv.INVALID_JSON_PARAM"),
        ({"TemplateParam": '{"code": null}'}, "isv.INVALID_JSON_PARAM"),
        ({"TemplateParam": "{}"}, "isv.TEMPLATE_MISSING_PARAMETERS"),
        ({"TemplateParam": ""}, "isv.TEMPLATE_MISSING_PARAMETERS"),
        (
            {"TemplateCode": "SMS_NOTIFY", "TemplateParam": '{"name":"A"}'},
            "isv.TEMPLATE_MISSING_PARAMETERS",
        ),
        ({"TemplateParam": json.dumps({"code": "1" * 36})}, "isv.PARAM_LENGTH_LIMIT"),
        ({"OutId": "x" * 257}, "isv.INVALID_PARAMETERS"),
    ],
)
def test_send_sms_business_errors(
    server: DysmsapiServer, client: AcsClient, overrides: dict[str, str], code: str
) -> None:
    answer = send(client, server, **overrides)  # HTTP 200: the SDK raises nothing
    assert answer["Code"] == code
    assert answer["Message"] and REQUEST_ID_RE.match(answer["RequestId"])
    assert "BizId" not in answer
    assert server.sent == []
    assert server.requests[0].status == 200 and server.requests[0].code == code


def test_send_sms_limits_are_inclusive(server: DysmsapiServer, client: AcsClient) -> None:
    assert send(client, server, OutId="x" * 256)["Code"] == "OK"
    assert send(client, server, TemplateParam=json.dumps({"code": "1" * 35}))["Code"] == "OK"
    both = send(client, server, TemplateCode="SMS_NOTIFY", TemplateParam='{"name":"A","time":"9"}')
    assert both["Code"] == "OK"


@pytest.mark.parametrize("missing", ["PhoneNumbers", "SignName", "TemplateCode"])
def test_send_sms_missing_parameter_is_http_400(
    server: DysmsapiServer, client: AcsClient, missing: str
) -> None:
    params = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(ServerException) as info:
        call(client, server, "SendSms", **params)
    assert info.value.get_http_status() == 400
    assert info.value.get_error_code() == f"Missing{missing}"
    assert REQUEST_ID_RE.match(info.value.get_request_id())
    assert server.sent == []


# --------------------------------------------------------------------------- authentication


def test_wrong_secret_is_signature_mismatch_and_leaks_string_to_sign(
    server: DysmsapiServer,
) -> None:
    with pytest.raises(ServerException) as info:
        send(make_client(secret="wrong-secret"), server)
    err = info.value
    # CommonRequest keeps string_to_sign on an inner request, so the SDK does NOT rewrite the
    # code to InvalidAccessKeySecret: the server's string-to-sign reaches the message (trap 7).
    assert err.get_http_status() == 400
    assert err.get_error_code() == "SignatureDoesNotMatch"
    prefix = "Specified signature is not matched with our calculation. server string to sign is:"
    assert err.get_error_msg().startswith(prefix + "POST&%2F&AccessKeyId%3Dtest-key-id%26")
    assert "TemplateParam%3D%257B%2522code%2522%253A%2522123456%2522%257D" in err.get_error_msg()
    assert server.sent == []
    assert server.requests[0].signature_ok is False
    assert server.requests[0].code == "SignatureDoesNotMatch"


def test_rpc_request_wrong_secret_is_rewritten_by_sdk(server: DysmsapiServer) -> None:
    """With a plain RpcRequest the SDK recognises its own string-to-sign and renames the error."""
    req = RpcRequest("Dysmsapi", "2017-05-25", "SendSms")
    req.set_endpoint(server.endpoint)
    req.set_method("POST")
    req.set_protocol_type(protocol_type.HTTP)
    for key, value in GOOD.items():
        req.add_query_param(key, value)
    with pytest.raises(ServerException) as info:
        make_client(secret="wrong-secret").do_action_with_exception(req)
    assert info.value.get_http_status() == 400
    assert info.value.get_error_code() == "InvalidAccessKeySecret"
    assert "string to sign" not in info.value.get_error_msg()
    assert server.requests[0].code == "SignatureDoesNotMatch"


def test_signature_mismatch_without_colon_crashes_sdk_with_index_error(
    server: DysmsapiServer, client: AcsClient
) -> None:
    """Trap 10: the SDK splits the message on ':' and indexes [1]."""
    server.http_error_next(400, {"Code": "SignatureDoesNotMatch", "Message": "no colon here"})
    with pytest.raises(IndexError):
        send(client, server)


def test_unknown_access_key_id_is_404(server: DysmsapiServer) -> None:
    with pytest.raises(ServerException) as info:
        send(make_client("no-such-key", "whatever"), server)
    assert info.value.get_http_status() == 404
    assert info.value.get_error_code() == "InvalidAccessKeyId.NotFound"
    assert server.sent == [] and server.requests[0].signature_ok is False


def test_replayed_sdk_url_is_refused(server: DysmsapiServer, client: AcsClient) -> None:
    send(client, server)
    target = server.requests[0].path  # exactly what the SDK sent, signature included
    status, answer = raw(server, "POST", target)
    assert status == 400 and answer["Code"] == "SignatureNonceUsed"
    assert REQUEST_ID_RE.match(answer["RequestId"])
    assert len(server.sent) == 1
    assert server.requests[1].signature_ok is True  # authentic, but a replay


def test_replayed_nonce_is_refused(server: DysmsapiServer) -> None:
    signed = signed_params("SendSms", GOOD, method="GET")
    target = "/?" + encode_query(signed)
    status, answer = raw(server, "GET", target)
    assert (status, answer["Code"]) == (200, "OK")
    status, answer = raw(server, "GET", target)
    assert status == 400 and answer["Code"] == "SignatureNonceUsed"
    # Same nonce, fresh signature (new timestamp): still refused.
    status, answer = raw_signed(server, "SendSms", GOOD, nonce=signed["SignatureNonce"])
    assert status == 400 and answer["Code"] == "SignatureNonceUsed"
    assert len(server.sent) == 1
    # reset() forgets nonces
    server.reset()
    assert raw(server, "GET", target)[0] == 200


def test_forged_request_does_not_burn_nonce(server: DysmsapiServer) -> None:
    forged = signed_params("SendSms", GOOD, secret="wrong", nonce="n-1")
    assert raw(server, "GET", "/?" + encode_query(forged))[1]["Code"] == "SignatureDoesNotMatch"
    assert raw_signed(server, "SendSms", GOOD, nonce="n-1")[1]["Code"] == "OK"


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (timedelta(minutes=-16), (400, "InvalidTimeStamp.Expired")),
        (timedelta(minutes=16), (400, "InvalidTimeStamp.Expired")),
        (timedelta(minutes=-14), (200, "OK")),
        (timedelta(minutes=14), (200, "OK")),
    ],
)
def test_timestamp_window(
    server: DysmsapiServer, offset: timedelta, expected: tuple[int, str]
) -> None:
    stamp = datetime.now(timezone.utc) + offset
    status, answer = raw_signed(server, "SendSms", GOOD, timestamp=stamp)
    assert (status, answer["Code"]) == expected


@pytest.mark.parametrize("name", _COMMON_REQUIRED)
def test_missing_common_parameter(server: DysmsapiServer, name: str) -> None:
    params = signed_params("SendSms", GOOD, method="GET")
    del params[name]
    if name != "Signature":
        params["Signature"] = sign("GET", params, "test-key-secret")
    status, answer = raw(server, "GET", "/?" + encode_query(params))
    assert status == 400 and answer["Code"] == f"Missing{name}"
    assert REQUEST_ID_RE.match(answer["RequestId"])


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("Version", "2018-01-01", "InvalidVersion"),
        ("Format", "XML", "InvalidParameter.Format"),
        ("SignatureMethod", "HMAC-SHA256", "InvalidSignatureMethod"),
        ("SignatureVersion", "2.0", "InvalidSignatureVersion"),
        ("Timestamp", "2024-01-01 00:00:00", "InvalidTimeStamp.Format"),
    ],
)
def test_invalid_common_parameter(server: DysmsapiServer, name: str, value: str, code: str) -> None:
    params = {**signed_params("SendSms", GOOD, method="GET"), name: value}
    params["Signature"] = sign("GET", params, "test-key-secret")
    status, answer = raw(server, "GET", "/?" + encode_query(params))
    assert (status, answer["Code"]) == (400, code)


def test_unknown_action_path_and_method(server: DysmsapiServer, client: AcsClient) -> None:
    with pytest.raises(ServerException) as info:
        call(client, server, "SendSmsPlease")
    assert info.value.get_http_status() == 404
    assert info.value.get_error_code() == "InvalidAction.NotFound"
    query = encode_query(signed_params("SendSms", GOOD, method="GET"))
    assert raw(server, "GET", "/other?" + query)[0] == 404
    status, answer = raw(server, "PUT", "/?" + query)
    assert (status, answer["Code"]) == (400, "UnsupportedHTTPMethod")
    assert server.sent == []
    assert len(server.requests) == 3


def test_form_body_parameters_are_merged_and_signed(server: DysmsapiServer) -> None:
    body_params = {"TemplateParam": '{"code":"999 999"}', "OutId": "a+b"}
    signed = signed_params("SendSms", {**GOOD, **body_params}, method="POST")
    query = {k: v for k, v in signed.items() if k not in body_params}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, answer = raw(
        server, "POST", "/?" + encode_query(query), urlencode(body_params).encode(), form
    )
    assert (status, answer["Code"]) == (200, "OK")
    assert server.sent[0].template_param == {"code": "999 999"}
    assert server.sent[0].out_id == "a+b"


# --------------------------------------------------------------------------- failure plans


def test_fail_next(server: DysmsapiServer, client: AcsClient) -> None:
    server.fail_next("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1", times=2)
    for _ in range(2):
        answer = send(client, server)
        assert answer == {
            "Code": "isv.BUSINESS_LIMIT_CONTROL",
            "Message": "触发分钟级流控Permits:1",
            "RequestId": answer["RequestId"],
        }
    assert server.sent == []
    assert send(client, server)["Code"] == "OK"
    server.fail_next("isv.AMOUNT_NOT_ENOUGH")  # default message
    answer = send(client, server)
    assert answer["Code"] == "isv.AMOUNT_NOT_ENOUGH" and answer["Message"]
    assert len(server.sent) == 1


def test_fail_next_does_not_hit_query_send_details(
    server: DysmsapiServer, client: AcsClient
) -> None:
    server.fail_next("isp.SYSTEM_ERROR")
    assert query(client, server)["Code"] == "OK"
    assert send(client, server)["Code"] == "isp.SYSTEM_ERROR"


def test_http_error_next_json(server: DysmsapiServer, client: AcsClient) -> None:
    server.http_error_next()
    with pytest.raises(ServerException) as info:
        send(client, server)
    assert info.value.get_http_status() == 500
    assert info.value.get_error_code() == "InternalError"
    assert REQUEST_ID_RE.match(info.value.get_request_id())
    server.http_error_next(503, {"Code": "ServiceUnavailable", "Message": "busy", "RequestId": "R"})
    with pytest.raises(ServerException) as info:
        send(client, server)
    err = info.value
    assert (err.get_http_status(), err.get_error_code(), err.get_error_msg()) == (
        503,
        "ServiceUnavailable",
        "busy",
    )
    assert err.get_request_id() == "R"
    assert server.sent == []
    assert send(client, server)["Code"] == "OK"


def test_http_error_next_non_json(server: DysmsapiServer, client: AcsClient) -> None:
    server.http_error_next(502, "<html><body>502 Bad Gateway</body></html>", times=2)
    for action in ("SendSms", "QuerySendDetails"):  # any action
        with pytest.raises(ServerException) as info:
            if action == "SendSms":
                send(client, server)
            else:
                query(client, server)
        assert info.value.get_http_status() == 502
        assert info.value.get_error_code() == "SDK.UnknownServerError"
        assert info.value.get_error_msg() == (
            "ServerResponseBody: <html><body>502 Bad Gateway</body></html>"
        )
        assert info.value.get_request_id() is None
    assert server.sent == []


def test_stall_next_client_times_out_but_sms_was_sent(server: DysmsapiServer) -> None:
    impatient = make_client(timeout=0.3)
    server.stall_next(1.0)
    started = time.monotonic()
    with pytest.raises(ClientException) as info:
        send(impatient, server)
    assert time.monotonic() - started < 0.9
    assert info.value.get_error_code() == "SDK.HttpError"
    assert "Read timed out" in info.value.get_error_msg()
    assert server.last_code(PHONE) == "123456"  # recorded when it arrived
    assert send(impatient, server)["Code"] == "OK"  # plan used up
    assert len(server.sent) == 2


def test_stall_next_without_record(server: DysmsapiServer, client: AcsClient) -> None:
    server.stall_next(0.2, then_record=False)
    assert send(client, server)["Code"] == "isp.SYSTEM_ERROR"  # patient client: late answer
    assert server.sent == []


def test_stall_does_not_block_stop() -> None:
    srv = DysmsapiServer()
    srv.start()
    srv.stall_next(30)
    with pytest.raises(ClientException):
        send(make_client(timeout=0.2), srv)
    started = time.monotonic()
    srv.stop()
    assert time.monotonic() - started < 1
    assert len(srv.sent) == 1


def test_drop_next(server: DysmsapiServer, client: AcsClient) -> None:
    server.drop_next()
    with pytest.raises(ClientException) as info:
        send(client, server)
    assert info.value.get_error_code() == "SDK.HttpError"
    assert "Remote end closed connection without response" in info.value.get_error_msg()
    assert server.sent == []
    assert server.requests[0].signature_ok and server.requests[0].status is None
    assert send(client, server)["Code"] == "OK"


def test_plan_precedence(server: DysmsapiServer, client: AcsClient) -> None:
    server.drop_next()
    server.stall_next(0.01)
    server.http_error_next(500)
    server.fail_next("isv.DAY_LIMIT_CONTROL")
    assert send(client, server)["Code"] == "isv.DAY_LIMIT_CONTROL"
    with pytest.raises(ServerException):
        send(client, server)
    assert send(client, server)["Code"] == "OK"  # stalled a little, recorded
    with pytest.raises(ClientException):
        send(client, server)
    assert send(client, server)["Code"] == "OK"
    assert len(server.sent) == 2


def test_plans_apply_only_after_authentication(server: DysmsapiServer) -> None:
    server.http_error_next(500)
    with pytest.raises(ServerException) as info:
        send(make_client(secret="bad"), server)
    assert info.value.get_error_code() == "SignatureDoesNotMatch"
    status, answer = raw_signed(server, "SendSms", GOOD)
    assert (status, answer["Code"]) == (500, "InternalError")


def test_connection_refused_after_stop() -> None:
    srv = DysmsapiServer()
    with srv:
        endpoint = srv.endpoint
    req = make_request(endpoint, **GOOD)
    with pytest.raises(ClientException) as info:
        make_client().do_action_with_exception(req)
    assert info.value.get_error_code() == "SDK.HttpError"
    # Trap 7: the message carries the whole URL, the code included.
    assert "TemplateParam=%7B%22code%22%3A%22123456%22%7D" in info.value.get_error_msg()


# --------------------------------------------------------------------------- QuerySendDetails


def query(
    client: AcsClient,
    server: DysmsapiServer,
    phone: str = PHONE,
    day: str | None = None,
    **extra: str,
) -> dict[str, Any]:
    params = {
        "PhoneNumber": phone,
        "SendDate": day or datetime.now(CHINA_TZ).strftime("%Y%m%d"),
        "PageSize": "10",
        "CurrentPage": "1",
        **extra,
    }
    return call(client, server, "QuerySendDetails", **params)


def dtos(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return answer["SmsSendDetailDTOs"]["SmsSendDetailDTO"]


def test_query_send_details_returns_sent_messages(
    server: DysmsapiServer, client: AcsClient
) -> None:
    ids = [
        send(client, server, TemplateParam=json.dumps({"code": f"00000{i}"}), OutId=f"o{i}")[
            "BizId"
        ]
        for i in range(3)
    ]
    send(client, server, PhoneNumbers="13900139000")
    answer = query(client, server, "+86" + PHONE)
    assert answer["Code"] == "OK" and answer["TotalCount"] == "3"
    rows = dtos(answer)
    assert [r["OutId"] for r in rows] == ["o2", "o1", "o0"]  # newest first
    first = rows[0]
    assert first["PhoneNum"] == PHONE and first["SendStatus"] == 3
    assert first["ErrCode"] == "DELIVERED" and first["TemplateCode"] == "SMS_LOGIN"
    assert first["Content"].startswith("【TestSign】") and "000002" in first["Content"]
    sent_at = datetime.strptime(first["SendDate"], "%Y-%m-%d %H:%M:%S")
    received = datetime.strptime(first["ReceiveDate"], "%Y-%m-%d %H:%M:%S")
    assert sent_at.strftime("%Y-%m-%d %H:%M:%S") == server.sent[2].send_date.strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    assert received >= sent_at
    by_biz = query(client, server, BizId=ids[1])
    assert by_biz["TotalCount"] == "1" and dtos(by_biz)[0]["OutId"] == "o1"
    page2 = query(client, server, PageSize="2", CurrentPage="2")
    assert page2["TotalCount"] == "3" and [r["OutId"] for r in dtos(page2)] == ["o0"]
    assert dtos(query(client, server, PageSize="2", CurrentPage="3")) == []
    yesterday = (datetime.now(CHINA_TZ) - timedelta(days=1)).strftime("%Y%m%d")
    empty = query(client, server, day=yesterday)
    assert empty["TotalCount"] == "0" and dtos(empty) == []


def test_query_send_details_delivery_status(server: DysmsapiServer, client: AcsClient) -> None:
    failed = send(client, server)["BizId"]
    send(client, server)
    server.set_delivery_status(failed, 2, "MOBILE_NOT_ON_SERVICE")
    server.set_delivery_status(PHONE, 1)  # newest message to that phone: waiting
    rows = dtos(query(client, server))
    assert [(r["SendStatus"], r["ErrCode"]) for r in rows] == [
        (1, ""),
        (2, "MOBILE_NOT_ON_SERVICE"),
    ]
    assert rows[0]["ReceiveDate"] == "" and rows[1]["ReceiveDate"] != ""
    with pytest.raises(LookupError):
        server.set_delivery_status("13700137000", 2)
    with pytest.raises(ValueError):
        server.set_delivery_status(failed, 4)


def test_add_delivery_report(server: DysmsapiServer, client: AcsClient) -> None:
    three_days_ago = datetime.now(CHINA_TZ) - timedelta(days=3)
    report = server.add_delivery_report(
        PHONE, send_date=three_days_ago, status=2, err_code="IS_CLOSE", out_id="old"
    )
    assert server.sent == []
    answer = query(client, server, day=three_days_ago.strftime("%Y%m%d"))
    (row,) = dtos(answer)
    assert (row["SendStatus"], row["ErrCode"], row["OutId"]) == (2, "IS_CLOSE", "old")
    assert report.biz_id and row["TemplateCode"] == "SMS_123456789"


@pytest.mark.parametrize(
    "extra",
    [
        {"PageSize": "0"},
        {"PageSize": "51"},
        {"PageSize": "ten"},
        {"CurrentPage": "0"},
        {"SendDate": "2024-01-01"},
        {"SendDate": "20241301"},
        {"PhoneNumber": f"{PHONE},13900139000"},
        {"PhoneNumber": "123"},
    ],
)
def test_query_send_details_bad_params(
    server: DysmsapiServer, client: AcsClient, extra: dict[str, str]
) -> None:
    params = {"PhoneNumber": PHONE, "SendDate": "20240101", "PageSize": "10", "CurrentPage": "1"}
    answer = call(client, server, "QuerySendDetails", **{**params, **extra})
    assert answer["Code"] == "isv.INVALID_PARAMETERS"


def test_query_send_details_missing_param(server: DysmsapiServer, client: AcsClient) -> None:
    with pytest.raises(ServerException) as info:
        call(client, server, "QuerySendDetails", PhoneNumber=PHONE, PageSize="1", CurrentPage="1")
    assert (info.value.get_http_status(), info.value.get_error_code()) == (400, "MissingSendDate")


# --------------------------------------------------------------------------- concurrency & misc


def test_concurrent_send_sms_all_recorded(server: DysmsapiServer, client: AcsClient) -> None:
    errors: list[BaseException] = []

    def worker(tag: int) -> None:
        try:
            for i in range(20):
                code = f"{tag}{i:05d}"
                answer = send(client, server, TemplateParam=json.dumps({"code": code}))
                assert answer["Code"] == "OK"
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    assert len(server.sent) == 40
    assert len({s.biz_id for s in server.sent}) == 40
    assert len({s.request_id for s in server.sent}) == 40
    assert sorted(s.template_param["code"] for s in server.sent) == sorted(
        f"{t}{i:05d}" for t in (1, 2) for i in range(20)
    )
    assert len(server.requests) == 40 and all(r.signature_ok for r in server.requests)


def test_reset_clears_everything(server: DysmsapiServer, client: AcsClient) -> None:
    send(client, server)
    server.fail_next("isp.SYSTEM_ERROR")
    server.drop_next()
    server.reset()
    assert server.sent == [] and server.requests == []
    assert send(client, server)["Code"] == "OK"


def test_server_is_silent(capfd: pytest.CaptureFixture[str]) -> None:
    with DysmsapiServer() as srv:
        raw(srv, "GET", "/?Action=SendSms")
        raw_signed(srv, "SendSms", GOOD)
        srv.drop_next()
        with pytest.raises(http.client.RemoteDisconnected):
            raw_signed(srv, "SendSms", GOOD)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_endpoint_and_lifecycle() -> None:
    srv = DysmsapiServer()
    with pytest.raises(RuntimeError):
        srv.endpoint
    srv.start()
    try:
        assert srv.host == "127.0.0.1" and srv.port > 0
        assert srv.endpoint == f"127.0.0.1:{srv.port}"
        with pytest.raises(RuntimeError):
            srv.start()
    finally:
        srv.stop()
    srv.stop()  # idempotent


# ------------------------------------------------------------------ QuerySmsSign / Template


def test_query_sms_sign_statuses(server: DysmsapiServer, client: AcsClient) -> None:
    answer = call(client, server, "QuerySmsSign", SignName="TestSign")
    assert answer["Code"] == "OK" and REQUEST_ID_RE.match(answer["RequestId"])
    assert (answer["SignName"], answer["SignStatus"]) == ("TestSign", 1)
    assert answer["Reason"] and re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", answer["CreateDate"])
    server.set_sign("Pending", status=0)
    server.set_sign("Refused", status=2, reason="文件不能证明信息真实性")
    assert call(client, server, "QuerySmsSign", SignName="Pending")["SignStatus"] == 0
    refused = call(client, server, "QuerySmsSign", SignName="Refused")
    assert (refused["SignStatus"], refused["Reason"]) == (2, "文件不能证明信息真实性")
    server.remove_sign("TestSign")
    missing = call(client, server, "QuerySmsSign", SignName="TestSign")
    assert missing["Code"] == "isv.SMS_SIGNATURE_ILLEGAL" and "SignStatus" not in missing
    # SendSms refuses what is not approved, like the real service.
    assert send(client, server, SignName="Pending")["Code"] == "isv.SMS_SIGNATURE_ILLEGAL"
    assert send(client, server, SignName="TestSign")["Code"] == "isv.SMS_SIGNATURE_ILLEGAL"
    server.reset()  # restores the constructor's signs
    assert call(client, server, "QuerySmsSign", SignName="TestSign")["SignStatus"] == 1
    assert call(client, server, "QuerySmsSign", SignName="Pending")["Code"] == (
        "isv.SMS_SIGNATURE_ILLEGAL"
    )


def test_query_sms_template(server: DysmsapiServer, client: AcsClient) -> None:
    answer = call(client, server, "QuerySmsTemplate", TemplateCode="SMS_LOGIN")
    assert answer["Code"] == "OK"
    assert (answer["TemplateCode"], answer["TemplateStatus"], answer["TemplateType"]) == (
        "SMS_LOGIN",
        1,
        0,
    )
    assert "${code}" in answer["TemplateContent"]
    assert call(client, server, "QuerySmsTemplate", TemplateCode="SMS_NOTIFY")["TemplateType"] == 1
    server.set_template("SMS_NEW", "您的验证码为：${code}，5分钟内有效", status=0)
    server.set_template("SMS_BAD", "验证码${code}", status=2, reason="变量不规范")
    server.set_template("SMS_HELLO", "${name}，您好", template_type=1)
    assert call(client, server, "QuerySmsTemplate", TemplateCode="SMS_NEW")["TemplateStatus"] == 0
    bad = call(client, server, "QuerySmsTemplate", TemplateCode="SMS_BAD")
    assert (bad["TemplateStatus"], bad["Reason"]) == (2, "变量不规范")
    hello = call(client, server, "QuerySmsTemplate", TemplateCode="SMS_HELLO")
    assert (hello["TemplateType"], hello["TemplateContent"]) == (1, "${name}，您好")
    assert call(client, server, "QuerySmsTemplate", TemplateCode="SMS_000")["Code"] == (
        "isv.SMS_TEMPLATE_ILLEGAL"
    )
    # SendSms follows the template's status and variables.
    assert send(client, server, TemplateCode="SMS_NEW")["Code"] == "isv.SMS_TEMPLATE_ILLEGAL"
    assert send(client, server, TemplateCode="SMS_HELLO")["Code"] == (
        "isv.TEMPLATE_MISSING_PARAMETERS"
    )
    assert (
        send(client, server, TemplateCode="SMS_HELLO", TemplateParam='{"name":"A"}')["Code"] == "OK"
    )
    assert server.sent[-1].content == "【TestSign】A，您好"
    server.remove_template("SMS_LOGIN")
    assert send(client, server)["Code"] == "isv.SMS_TEMPLATE_ILLEGAL"


@pytest.mark.parametrize(
    ("action", "name"), [("QuerySmsSign", "SignName"), ("QuerySmsTemplate", "TemplateCode")]
)
def test_query_sign_and_template_missing_parameter(
    server: DysmsapiServer, client: AcsClient, action: str, name: str
) -> None:
    with pytest.raises(ServerException) as info:
        call(client, server, action)
    assert (info.value.get_http_status(), info.value.get_error_code()) == (400, f"Missing{name}")


def test_clock_offset_moves_date_header_and_timestamp_window(server: DysmsapiServer) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=2)
    try:
        conn.request("GET", "/")
        reply = conn.getresponse()
        reply.read()
        date = reply.getheader("Date")
    finally:
        conn.close()
    assert date is not None
    server_now = datetime.strptime(date, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=timezone.utc)
    assert abs((server_now - datetime.now(timezone.utc)).total_seconds()) < 5
    server.clock_offset = 20 * 60
    conn = http.client.HTTPConnection(server.host, server.port, timeout=2)
    try:
        conn.request("GET", "/")
        reply = conn.getresponse()
        reply.read()
        date = reply.getheader("Date")
    finally:
        conn.close()
    assert date is not None
    ahead = datetime.strptime(date, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=timezone.utc)
    assert 20 * 60 - 5 < (ahead - datetime.now(timezone.utc)).total_seconds() < 20 * 60 + 5
    # A request signed on this machine's clock is now 20 minutes old for the server.
    status, answer = raw_signed(server, "QuerySmsSign", {"SignName": "TestSign"})
    assert (status, answer["Code"]) == (400, "InvalidTimeStamp.Expired")
    server.reset()
    assert server.clock_offset == 0
