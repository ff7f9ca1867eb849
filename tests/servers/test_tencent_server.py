"""The loopback Tencent server checks what the real gateway checks (the TC3-HMAC-SHA256
signature of every request) and its fault plans do what its docstring says. Requests are
made both through the real SDK and by hand (signed with the server's independent
``tc3_signature``), so a tampered request can be built."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models, sms_client

from tests.servers.tencent_server import (
    SDK_APP_ID,
    SECRET_ID,
    SECRET_KEY,
    TencentServer,
    tc3_signature,
)

PHONE = "+8613800138000"


@pytest.fixture(scope="module")
def _server() -> Iterator[TencentServer]:
    with TencentServer() as server:
        yield server


@pytest.fixture
def server(_server: TencentServer) -> Iterator[TencentServer]:
    _server.reset()
    yield _server
    assert _server.errors == []
    _server.reset()


def client(server: TencentServer, key: str = SECRET_KEY, timeout: float = 5) -> Any:
    profile = ClientProfile(
        httpProfile=HttpProfile(protocol="http", endpoint=server.endpoint, reqTimeout=timeout)
    )
    return sms_client.SmsClient(Credential(SECRET_ID, key), "ap-guangzhou", profile)


def send_request(
    phone: str = PHONE, template: str = "1001", params: list[str] | None = None
) -> Any:
    req = models.SendSmsRequest()
    req.PhoneNumberSet = [phone]
    req.SmsSdkAppId = SDK_APP_ID
    req.SignName = "TestSign"
    req.TemplateId = template
    req.TemplateParamSet = ["123456"] if params is None else params
    req.SessionContext = "ctx-1"
    return req


def raw(
    server: TencentServer,
    body: dict[str, Any],
    *,
    key: str = SECRET_KEY,
    timestamp: int | None = None,
    scope_date: str | None = None,
    service: str = "sms",
    tamper: bytes | None = None,
    signed_headers: str = "content-type;host",
) -> dict[str, Any]:
    """A hand-signed SendSms (the SDK always signs right)."""
    payload = json.dumps(body).encode()
    ts = int(time.time()) if timestamp is None else timestamp
    date = datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d")
    headers = {"Content-Type": "application/json", "Host": server.endpoint}
    signature = tc3_signature(
        key,
        date=scope_date or date,
        timestamp=str(ts),
        method="POST",
        path="/",
        query="",
        headers=headers,
        signed_headers=signed_headers,
        body=payload,
        service=service,
    )
    headers.update(
        {
            "X-TC-Action": "SendSms",
            "X-TC-Version": "2021-01-11",
            "X-TC-Timestamp": str(ts),
            "X-TC-Region": "ap-guangzhou",
            "Authorization": (
                f"TC3-HMAC-SHA256 Credential={SECRET_ID}/{scope_date or date}/{service}/"
                f"tc3_request, SignedHeaders={signed_headers}, Signature={signature}"
            ),
        }
    )
    connection = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        connection.request("POST", "/", body=tamper or payload, headers=headers)
        answer: dict[str, Any] = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    return answer["Response"]


BODY = {
    "PhoneNumberSet": [PHONE],
    "SmsSdkAppId": SDK_APP_ID,
    "SignName": "TestSign",
    "TemplateId": "1001",
    "TemplateParamSet": ["123456"],
}


def error_code(response: dict[str, Any]) -> str | None:
    return response.get("Error", {}).get("Code")


# -- the signature --------------------------------------------------------------------------


def test_a_correct_signature_is_accepted(server):
    response = raw(server, BODY)
    assert error_code(response) is None and response["SendStatusSet"][0]["Code"] == "Ok"
    assert server.requests[-1].signature_ok and server.last_code(PHONE) == "123456"


def test_a_wrong_key_is_refused(server):
    assert error_code(raw(server, BODY, key="wrong")) == "AuthFailure.SignatureFailure"
    with pytest.raises(TencentCloudSDKException) as caught:
        client(server, key="wrong").SendSms(send_request())
    assert caught.value.get_code() == "AuthFailure.SignatureFailure"
    assert server.sent == []


def test_a_tampered_body_is_refused(server):
    tampered = json.dumps({**BODY, "TemplateParamSet": ["000000"]}).encode()
    assert error_code(raw(server, BODY, tamper=tampered)) == "AuthFailure.SignatureFailure"
    assert server.sent == [] and not server.requests[-1].signature_ok


def test_a_stale_timestamp_is_refused(server):
    stale = int(time.time()) - 400
    assert error_code(raw(server, BODY, timestamp=stale)) == "AuthFailure.SignatureExpire"


def test_the_credential_scope_is_checked(server):
    assert error_code(raw(server, BODY, scope_date="2001-01-01")) == "AuthFailure.SignatureFailure"
    assert error_code(raw(server, BODY, service="cvm")) == "AuthFailure.SignatureFailure"
    assert error_code(raw(server, BODY, signed_headers="content-type")) == (
        "AuthFailure.SignatureFailure"
    )


def test_an_unknown_secret_id_is_refused(server):
    server.accounts.pop(SECRET_ID)
    try:
        assert error_code(raw(server, BODY)) == "AuthFailure.SecretIdNotFound"
    finally:
        server.accounts[SECRET_ID] = SECRET_KEY


# -- SendSms --------------------------------------------------------------------------------


def test_send_through_the_sdk(server):
    answer = client(server).SendSms(send_request())
    [status] = answer.SendStatusSet
    assert status.Code == "Ok" and status.SessionContext == "ctx-1" and status.SerialNo
    sms = server.last_sms("13800138000")
    assert sms.serial_no == status.SerialNo and sms.request_id == answer.RequestId


def test_per_number_checks(server):
    sdk = client(server)
    assert sdk.SendSms(send_request(params=[])).SendStatusSet[0].Code == (
        "FailedOperation.TemplateParamSetNotMatchApprovedTemplate"
    )
    assert sdk.SendSms(send_request("+86123")).SendStatusSet[0].Code == (
        "InvalidParameterValue.IncorrectPhoneNumber"
    )
    assert sdk.SendSms(send_request("+85261234567")).SendStatusSet[0].Code == (
        "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone"
    )
    assert sdk.SendSms(send_request("+85261234567", "2001")).SendStatusSet[0].Code == "Ok"
    server.set_template("1001", "验证码{1}", status=1)
    assert sdk.SendSms(send_request()).SendStatusSet[0].Code == (
        "FailedOperation.TemplateIncorrectOrUnapproved"
    )


def test_fail_next_per_number_and_per_request(server):
    sdk = client(server)
    server.fail_next("LimitExceeded.PhoneNumberDailyLimit")
    assert sdk.SendSms(send_request()).SendStatusSet[0].Code == (
        "LimitExceeded.PhoneNumberDailyLimit"
    )
    server.fail_next("InternalError.Timeout")
    with pytest.raises(TencentCloudSDKException) as caught:
        sdk.SendSms(send_request())
    assert caught.value.get_code() == "InternalError.Timeout" and caught.value.get_request_id()
    server.fail_next("FailedOperation.PhoneNumberInBlacklist", level="request")
    with pytest.raises(TencentCloudSDKException):
        sdk.SendSms(send_request())
    assert server.sent == []
    assert sdk.SendSms(send_request()).SendStatusSet[0].Code == "Ok"  # plans are used up


def test_http_error_next(server):
    server.http_error_next(502)
    with pytest.raises(TencentCloudSDKException) as caught:
        client(server).SendSms(send_request())
    assert caught.value.get_code() == "ServerNetworkError" and server.sent == []


def test_stall_next_records_then_answers_late(server):
    server.stall_next(1.0)
    with pytest.raises(TencentCloudSDKException) as caught:
        client(server, timeout=0.3).SendSms(send_request())
    assert caught.value.get_code() == "ClientNetworkError"
    assert server.last_code(PHONE) == "123456"  # it went out


@pytest.mark.parametrize("after_read", [True, False])
def test_drop_next_resets_the_connection(server, after_read):
    server.drop_next(after_read=after_read, then_record=after_read)
    with pytest.raises(TencentCloudSDKException) as caught:
        client(server).SendSms(send_request())
    assert caught.value.get_code() == "ClientNetworkError"
    assert len(server.sent) == (1 if after_read else 0)


# -- the console APIs and callbacks ---------------------------------------------------------


def test_describe_signs_and_templates(server):
    server.set_sign("Other", status=-1, reply="no")
    req = models.DescribeSmsSignListRequest()
    req.International = 0
    req.Limit = 100
    req.Offset = 0
    signs = {
        s.SignName: s.StatusCode
        for s in client(server).DescribeSmsSignList(req).DescribeSignListStatusSet
    }
    assert signs == {"TestSign": 0, "Other": -1}
    req = models.DescribeSmsTemplateListRequest()
    req.International = 0
    req.TemplateIdSet = [1001, 2001]
    found = client(server).DescribeSmsTemplateList(req).DescribeTemplateStatusSet
    assert [t.TemplateId for t in found] == [1001]  # 2001 is international


def test_report_and_push(server):
    client(server).SendSms(send_request())
    sms = server.last_sms(PHONE)
    report = server.report(sms, success=False, errmsg="MK:0001")
    assert report["mobile"] == "13800138000" and report["nationcode"] == "86"
    assert report["ext"] == "ctx-1" and report["sid"] == sms.serial_no
    assert report["report_status"] == "FAIL"
    assert not server.push_accepted(404, {"result": 0})
    assert server.push_accepted(200, {"result": 0, "errmsg": "OK"})
