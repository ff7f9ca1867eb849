"""The provider in one package: one exception root, settings validated once, the sender's
outcome handed back explicitly (never through ``__cause__``), and every name the README
shows importable from ``flask_smscode`` — against the loopback Dysmsapi server."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest

import flask_smscode
from flask_smscode import (
    AliyunSender,
    AliyunSettings,
    AliyunSms,
    AliyunSmsError,
    ConfigurationError,
    DeliveryUnconfirmed,
    FlaskSmsCodeError,
    InvalidPhone,
    ProviderError,
    SendReceipt,
    SmsCodeError,
    Throttled,
)
from flask_smscode import errors as errors_module
from flask_smscode.aliyun import errors as aliyun_errors
from flask_smscode.config import DEFAULTS, SETTINGS
from tests.helpers import E164, send

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_name_the_readme_imports_from_the_package_exists() -> None:
    text = README.read_text(encoding="utf-8")
    names: set[str] = set()
    for group in re.findall(r"from flask_smscode import ([^\n(]+|\([^)]*\))", text):
        names.update(n.strip() for n in group.strip("()").split(",") if n.strip())
    # Names the README shows in prose or comments as the client's results.
    names.update({"DeliveryRecord", "DeliveryStatus", "SendSmsResponse", "AliyunSmsError"})
    missing = [n for n in sorted(names) if not hasattr(flask_smscode, n)]
    assert missing == []
    assert {"DeliveryRecord", "DeliveryStatus"} <= set(flask_smscode.__all__)


def test_one_exception_root() -> None:
    classes = [
        v
        for v in vars(errors_module).values()
        if isinstance(v, type) and issubclass(v, BaseException)
    ]
    assert len(classes) > 15
    assert all(issubclass(c, FlaskSmsCodeError) for c in classes)
    assert issubclass(ConfigurationError, RuntimeError)  # as before the tree had a root
    # The Alibaba client's branch lives in aliyun/errors.py, under the same root.
    vendor = [
        v
        for v in vars(aliyun_errors).values()
        if isinstance(v, type) and issubclass(v, BaseException)
    ]
    assert len(vendor) == 5 and all(issubclass(c, FlaskSmsCodeError) for c in vendor)
    assert aliyun_errors.AliyunInvalidArguments("x").code == 46001
    assert aliyun_errors.AliyunProviderRefused("x").code == 46002
    assert aliyun_errors.AliyunRequestFailed("x").code == 46003
    assert isinstance(aliyun_errors.AliyunRequestFailed("x"), AliyunSmsError)


def test_every_setting_has_a_unit_and_a_meaning() -> None:
    assert set(SETTINGS) == set(DEFAULTS)
    for key, setting in SETTINGS.items():
        assert key.startswith("SMSCODE_")
        assert setting.unit and setting.meaning, key
        assert DEFAULTS[key] == setting.default
        if key.endswith("_SECONDS"):
            assert setting.unit == "seconds", key


def test_client_sender_and_transport_share_one_validated_settings(aliyun_config) -> None:
    sender = AliyunSender(aliyun_config, purposes=("login",))
    assert sender.client.settings is sender.settings
    assert sender.client.transport.settings is sender.settings
    assert sender.settings == AliyunSettings.from_config(aliyun_config)
    assert "test-key-secret" not in repr(sender.settings) + repr(sender.client)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        (
            {"SMSCODE_ALIYUN_PROTOCOL": "http", "SMSCODE_ALIYUN_ENDPOINT": "dysmsapi.aliyuncs.com"},
            "SMSCODE_ALIYUN_PROTOCOL",
        ),
        ({"SMSCODE_ALIYUN_PROTOCOL": "ftp"}, "SMSCODE_ALIYUN_PROTOCOL"),
        ({"SMSCODE_ALIYUN_TIMEOUT_SECONDS": 0}, "SMSCODE_ALIYUN_TIMEOUT_SECONDS"),
        ({"SMSCODE_ALIYUN_TIMEOUT_SECONDS": True}, "SMSCODE_ALIYUN_TIMEOUT_SECONDS"),
        ({"SMSCODE_ALIYUN_TEMPLATE_CODE": 42}, "SMSCODE_ALIYUN_TEMPLATE_CODE"),
        ({"SMSCODE_ALLOWED_REGIONS": ["XX"]}, "SMSCODE_ALLOWED_REGIONS"),
    ],
)
def test_client_and_sender_refuse_the_same_values_naming_the_key(
    aliyun_config, override: dict[str, Any], key: str
) -> None:
    config = {**aliyun_config, **override}
    for build in (AliyunSms.from_config, lambda c: AliyunSender(c, purposes=("login",))):
        with pytest.raises(ConfigurationError, match=key):
            build(config)


def test_sender_hands_back_a_receipt(aliyun_config, sms_server) -> None:
    sender = AliyunSender(aliyun_config, purposes=("login",))
    receipt = sender.send(E164, "123456", "login", out_id="0123456789abcdef")
    assert isinstance(receipt, SendReceipt)
    [sms] = sms_server.sent
    assert receipt.provider_code == "OK" and receipt.sender == "aliyun"
    assert receipt.out_id == "0123456789abcdef"
    assert receipt.biz_id and receipt.request_id
    assert sms.biz_id == receipt.biz_id


@pytest.mark.parametrize(
    ("provider_code", "kind"),
    [
        ("isv.MOBILE_NUMBER_ILLEGAL", InvalidPhone),
        ("isv.BUSINESS_LIMIT_CONTROL", Throttled),
        ("isv.SMS_TEMPLATE_ILLEGAL", ProviderError),
    ],
)
def test_sender_refusals_carry_the_provider_fields(
    aliyun_config, sms_server, provider_code, kind
) -> None:
    sender = AliyunSender(aliyun_config, purposes=("login",))
    sms_server.fail_next(provider_code)
    with pytest.raises(kind) as info:
        sender.send(E164, "123456", "login", out_id="0123456789abcdef")
    error = info.value
    assert error.provider_code == provider_code and error.request_id
    assert error.out_id == "0123456789abcdef" and error.sender == "aliyun"
    assert error.__cause__ is None and error.__context__ is None
    assert "123456" not in str(error)


def test_timeout_after_sending_is_unconfirmed_with_its_out_id(aliyun_config, sms_server) -> None:
    sender = AliyunSender(
        {**aliyun_config, "SMSCODE_ALIYUN_TIMEOUT_SECONDS": 0.3}, purposes=("login",)
    )
    sms_server.stall_next(1.0)
    with pytest.raises(DeliveryUnconfirmed) as info:
        sender.send(E164, "123456", "login", out_id="0123456789abcdef")
    assert info.value.out_id == "0123456789abcdef" and info.value.sender == "aliyun"
    assert info.value.__cause__ is None and info.value.__context__ is None


class RefusingSender:
    """A custom sender that refuses, putting the provider's fields on the error itself."""

    def __init__(self, config: Any) -> None:
        pass

    def send(self, phone: str, code: str, purpose: str, *, out_id: str) -> SendReceipt:
        raise ProviderError().with_provider(
            provider_code="acme.DOWN", request_id="req-1", out_id=out_id, sender="acme"
        )


class ChainingSender(RefusingSender):
    """A refusal whose provider code hides only in ``__cause__``: no longer read."""

    def send(self, phone: str, code: str, purpose: str, *, out_id: str) -> SendReceipt:
        cause = ProviderError(provider_code="acme.HIDDEN")
        raise SmsCodeError("refused") from cause


def send_log_line(caplog: pytest.LogCaptureFixture) -> str:
    [line] = [r.getMessage() for r in caplog.records if "event=send" in r.getMessage()]
    return line


def test_service_reads_the_provider_fields_from_the_error(make_app, caplog) -> None:
    client = make_app(SMSCODE_SENDER=f"{__name__}.RefusingSender").test_client()
    with caplog.at_level(logging.INFO, logger="flask_smscode"):
        assert send(client).status_code == 502
    line = send_log_line(caplog)
    assert "provider_code=acme.DOWN" in line and "request_id=req-1" in line


def test_service_no_longer_digs_in_the_cause(make_app, caplog) -> None:
    client = make_app(SMSCODE_SENDER=f"{__name__}.ChainingSender").test_client()
    with caplog.at_level(logging.INFO, logger="flask_smscode"):
        assert send(client).status_code == 400
    assert "acme.HIDDEN" not in send_log_line(caplog)
