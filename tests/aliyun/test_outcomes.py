"""The one table of Alibaba Cloud error codes, and the failover rule read from it."""

from __future__ import annotations

import json

import pytest

from flask_smscode.aliyun.errors import (
    AliyunInvalidArguments,
    AliyunProviderRefused,
    AliyunRequestFailed,
)
from flask_smscode.aliyun.outcomes import CODES, Failover, Meaning, codes_meaning, meaning_of
from flask_smscode.aliyun.outcomes import provider_down as down


def refused(code: str, status: int = 200) -> AliyunProviderRefused:
    return AliyunProviderRefused("refused", provider_code=code, http_status=status)


def test_every_code_has_a_meaning_and_a_failover_rule() -> None:
    assert len(CODES) >= 20
    for code, row in CODES.items():
        assert isinstance(row.meaning, Meaning) and isinstance(row.failover, Failover), code
    assert meaning_of("isv.MOBILE_NUMBER_ILLEGAL") is Meaning.INVALID_PHONE
    assert meaning_of("isv.BUSINESS_LIMIT_CONTROL") is Meaning.FLOW_CONTROL
    assert meaning_of("isv.SOMETHING_NEW") is None and meaning_of(None) is None
    assert "isv.SMS_SIGN_ILLEGAL" in codes_meaning(Meaning.SIGNATURE)


@pytest.mark.parametrize(
    "code",
    [
        "isp.SYSTEM_ERROR",
        "isv.AMOUNT_NOT_ENOUGH",
        "isv.OUT_OF_SERVICE",
        "isv.DAY_LIMIT_CONTROL",
        "isp.RAM_PERMISSION_DENY",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.SMS_TEMPLATE_ILLEGAL",
    ],
)
def test_the_accounts_own_state_moves_on(code: str) -> None:
    assert down(refused(code))


@pytest.mark.parametrize(
    "code",
    [
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.BUSINESS_LIMIT_CONTROL",
        "isv.INVALID_PARAMETERS",
        "isv.SMS_SIGN_ILLEGAL",
        "Forbidden.RAM",
    ],
)
def test_the_number_flow_control_and_our_own_request_end_the_send(code: str) -> None:
    assert not down(refused(code))


def test_credentials_move_on_only_as_an_http_error() -> None:
    assert down(refused("SignatureDoesNotMatch", 400))
    assert not down(refused("SignatureDoesNotMatch", 200))
    assert down(refused("InvalidAccessKeyId.NotFound", 404))
    assert not down(refused("InvalidAccessKeyId", 404))  # doctor's spelling only


def test_the_gateway_failing_moves_on_and_an_ambiguous_outcome_never_does() -> None:
    assert down(refused("ServiceUnavailable", 503))
    assert down(AliyunRequestFailed("no connection", provider_code="SDK.HttpError"))
    assert not down(
        AliyunRequestFailed("read timeout", provider_code="SDK.HttpError", delivery_unknown=True)
    )
    assert not down(AliyunInvalidArguments("missing template"))


# -- delivery reports that teach the pumping guard ------------------------------------------


@pytest.mark.parametrize("code", ["MK:0001", "mk:0005", "UNDELIV", "DB:0101", "MBBLACK"])
def test_dead_number_receipts_teach_the_guard(code: str) -> None:
    from flask_smscode.aliyun.outcomes import receipt_number_dead
    from flask_smscode.aliyun.reports import parse_reports

    assert receipt_number_dead(code)
    body = json.dumps(
        [
            {"phone_number": "13800138000", "success": False, "err_code": code, "out_id": "x"},
            {"phone_number": "13800138001", "success": True, "err_code": code, "out_id": "y"},
        ]
    ).encode()
    failed, delivered = parse_reports(body)
    assert failed.number_dead and not delivered.number_dead  # only an undelivered report


@pytest.mark.parametrize("code", ["MK:0023", "EXPIRED", "DELIVERED", "", None, "IB:0008"])
def test_temporary_failures_teach_nothing(code: str | None) -> None:
    """Powered off, expired, flow control: real users have them too."""
    from flask_smscode.aliyun.outcomes import receipt_number_dead

    assert not receipt_number_dead(code)
