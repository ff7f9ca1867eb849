"""The loopback Dypnsapi server itself: it checks every RPC signature as the gateway does,
answers in Dypnsapi's JSON shape, and its fault API does what it says (other vendors'
failover tests rely on it). Driven by the real aliyunsdkcore client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.http import protocol_type
from aliyunsdkcore.request import CommonRequest

from tests.helpers import ACCESS_KEY_ID, ACCESS_KEY_SECRET, PHONE
from tests.servers.dypnsapi_server import DypnsapiServer, signed_params
from tests.servers.dysmsapi_server import encode_query

SIGN, TEMPLATE = "速通互联验证码", "100001"


@pytest.fixture(scope="module")
def _server() -> Iterator[DypnsapiServer]:
    with DypnsapiServer({ACCESS_KEY_ID: ACCESS_KEY_SECRET}) as server:
        yield server


@pytest.fixture
def server(_server: DypnsapiServer) -> Iterator[DypnsapiServer]:
    _server.reset()
    yield _server
    assert _server.errors == []
    _server.reset()


def call(
    server: DypnsapiServer,
    action: str,
    params: dict[str, str],
    *,
    key_id: str = ACCESS_KEY_ID,
    secret: str = ACCESS_KEY_SECRET,
    timeout: float = 2.0,
) -> dict[str, Any]:
    client = AcsClient(
        key_id,
        secret,
        "cn-hangzhou",
        auto_retry=False,
        max_retry_time=0,
        timeout=timeout,
        proxy={"http": None, "https": None},
    )
    request = CommonRequest(domain=server.endpoint, version="2017-05-25", action_name=action)
    request.set_method("POST")
    request.set_protocol_type(protocol_type.HTTP)
    request.set_accept_format("json")
    for key, value in params.items():
        request.add_query_param(key, value)
    answer: dict[str, Any] = json.loads(client.do_action_with_exception(request))
    return answer


def send(server: DypnsapiServer, **extra: str) -> dict[str, Any]:
    params = {
        "PhoneNumber": PHONE,
        "SignName": SIGN,
        "TemplateCode": TEMPLATE,
        "TemplateParam": '{"code":"4321","min":"5"}',
        **extra,
    }
    return call(server, "SendSmsVerifyCode", params)


def test_send_answers_in_dypnsapi_shape(server):
    answer = send(server, OutId="out-1")
    assert set(answer) == {"AccessDeniedDetail", "Code", "Message", "Success", "Model"}
    assert answer["Code"] == "OK" and answer["Success"] is True
    assert set(answer["Model"]) == {"RequestId", "OutId", "BizId"}  # no VerifyCode unasked
    assert answer["Model"]["OutId"] == "out-1"
    assert server.last_code(PHONE) == "4321" and server.last_code("+86" + PHONE) == "4321"
    assert server.requests[-1].signature_ok


def test_generated_code_returned_and_checked(server):
    answer = send(
        server,
        TemplateParam='{"code":"##code##","min":"5"}',
        CodeLength="6",
        ReturnVerifyCode="true",
    )
    code = answer["Model"]["VerifyCode"]
    assert len(code) == 6 and code.isdigit() and server.last_sms(PHONE).generated
    check = call(server, "CheckSmsVerifyCode", {"PhoneNumber": PHONE, "VerifyCode": code})
    assert check["Model"]["VerifyResult"] == "PASS"
    wrong = call(server, "CheckSmsVerifyCode", {"PhoneNumber": PHONE, "VerifyCode": "000000"})
    assert wrong["Model"]["VerifyResult"] == "UNKNOWN"


def test_a_code_given_by_the_caller_cannot_be_checked_by_pnvs(server):
    send(server)
    check = call(server, "CheckSmsVerifyCode", {"PhoneNumber": PHONE, "VerifyCode": "4321"})
    assert check["Model"]["VerifyResult"] == "UNKNOWN"


def test_wrong_secret_is_rejected(server):
    with pytest.raises(ServerException) as caught:
        call(server, "SendSmsVerifyCode", {"PhoneNumber": PHONE}, secret="bad-secret")
    assert caught.value.get_http_status() == 400
    assert caught.value.get_error_code() in {"SignatureDoesNotMatch", "InvalidAccessKeySecret"}
    assert server.sent == [] and not server.requests[-1].signature_ok


def test_unknown_key_is_rejected(server):
    with pytest.raises(ServerException) as caught:
        call(server, "SendSmsVerifyCode", {"PhoneNumber": PHONE}, key_id="nobody")
    assert caught.value.get_error_code() == "InvalidAccessKeyId.NotFound"


def test_replayed_nonce_and_old_timestamp_are_rejected(server):
    params = signed_params(
        "SendSmsVerifyCode",
        {
            "PhoneNumber": PHONE,
            "SignName": SIGN,
            "TemplateCode": TEMPLATE,
            "TemplateParam": '{"code":"1","min":"5"}',
        },
    )
    url = f"http://{server.endpoint}/?{encode_query(params)}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    assert json.loads(opener.open(url, timeout=2).read())["Code"] == "OK"
    with pytest.raises(urllib.error.HTTPError) as caught:
        opener.open(url, timeout=2)
    assert json.loads(caught.value.read())["Code"] == "SignatureNonceUsed"
    old = signed_params(
        "SendSmsVerifyCode", {"PhoneNumber": PHONE}, timestamp="2020-01-01T00:00:00Z"
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        opener.open(f"http://{server.endpoint}/?{encode_query(old)}", timeout=2)
    assert json.loads(caught.value.read())["Code"] == "InvalidTimeStamp.Expired"


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"PhoneNumber": "12345"}, "isv.MOBILE_NUMBER_ILLEGAL"),
        ({"CountryCode": "852"}, "isv.MOBILE_NUMBER_ILLEGAL"),
        ({"SignName": "自定义签名"}, "isv.SMS_SIGN_ILLEGAL"),
        ({"TemplateCode": "SMS_1"}, "isv.SMS_TEMPLATE_ILLEGAL"),
        ({"TemplateParam": '{"code":"1"}'}, "isv.INVALID_PARAMETERS"),
        ({"TemplateParam": "not json"}, "isv.INVALID_PARAMETERS"),
        ({"ValidTime": "soon"}, "isv.INVALID_PARAMETERS"),
    ],
)
def test_refusals_are_business_codes(server, extra, code):
    answer = send(server, **extra)
    assert answer["Code"] == code and answer["Success"] is False and server.sent == []


def test_interval_frequency_control(server):
    assert send(server, Interval="60")["Code"] == "OK"
    assert send(server)["Code"] == "biz.FREQUENCY"
    assert send(server, SchemeName="另一个方案")["Code"] == "OK"  # per scheme
    server.enforce_interval = False
    assert send(server)["Code"] == "OK"


def test_fault_api(server):
    server.fail_next("isv.OUT_OF_SERVICE", times=2)
    assert send(server)["Code"] == "isv.OUT_OF_SERVICE"
    assert send(server)["Code"] == "isv.OUT_OF_SERVICE"
    server.http_error_next(503)
    with pytest.raises(ServerException) as caught:
        send(server)
    assert caught.value.get_http_status() == 503
    server.drop_next()
    with pytest.raises(ClientException):
        send(server)
    server.stall_next(1.0)
    with pytest.raises(ClientException):
        call(
            server,
            "SendSmsVerifyCode",
            {
                "PhoneNumber": PHONE,
                "SignName": SIGN,
                "TemplateCode": TEMPLATE,
                "TemplateParam": '{"code":"9","min":"5"}',
            },
            timeout=0.3,
        )
    assert server.last_code(PHONE) == "9"  # recorded although the answer came too late
    assert server.sent and len(server.sent) == 1


def test_unknown_action_and_missing_parameters(server):
    with pytest.raises(ServerException) as caught:
        call(server, "SendSms", {})
    assert caught.value.get_error_code() == "InvalidAction.NotFound"
    with pytest.raises(ServerException) as caught:
        call(server, "SendSmsVerifyCode", {"PhoneNumber": PHONE})
    assert caught.value.get_error_code() == "MissingSignName"
