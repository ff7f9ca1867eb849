"""Numbers outside the mainland: the international template, Alibaba's number format, and the
start-up refusal when the allowed regions reach abroad without that template.

Against the loopback Dysmsapi server, which (like Alibaba) refuses a domestic template for a
number abroad and an international template for a +86 number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from flask_smscode import AliyunSender, ConfigurationError
from tests.servers.dysmsapi_server import DysmsapiServer

INTL = "SMS_INTL_CODE"  # the loopback server's international (TemplateType 3) template
DOMESTIC = "SMS_123456789"


def send(app: Flask, phone: str, purpose: str = "login") -> Any:
    return app.test_client().post("/sms/send", json={"phone": phone, "purpose": purpose})


def verify(app: Flask, phone: str, code: str, purpose: str = "login") -> Any:
    return app.test_client().post(
        "/sms/verify", json={"phone": phone, "code": code, "purpose": purpose}
    )


@pytest.mark.parametrize(
    ("regions", "phone", "sent_as"),
    [
        (["CN", "HK"], "+852 5123 4567", "85251234567"),  # Hong Kong counts as international
        (["*"], "+1 415 555 2671", "14155552671"),  # US: country code 1 + number
        (["CN", "GB", "GG"], "+44 7911 123456", "447911123456"),  # Guernsey shares +44
    ],
)
def test_codes_abroad_use_the_international_template(
    make_app: Callable[..., Flask],
    sms_server: DysmsapiServer,
    regions: list[str],
    phone: str,
    sent_as: str,
) -> None:
    app = make_app(SMSCODE_ALLOWED_REGIONS=regions)
    response = send(app, phone)
    assert response.status_code == 200, response.get_json()
    [sms] = sms_server.sent
    assert sms.template_code == INTL
    assert sms.phone_numbers == [sent_as]  # country code + number, no '+' nor '00'
    assert verify(app, phone, sms.code or "").status_code == 200


def test_mainland_numbers_keep_the_domestic_template(
    make_app: Callable[..., Flask], sms_server: DysmsapiServer
) -> None:
    app = make_app(SMSCODE_ALLOWED_REGIONS=["*"])
    assert send(app, "+86 138 0013 8000").status_code == 200
    [sms] = sms_server.sent
    assert sms.template_code == DOMESTIC and sms.phone_numbers == ["13800138000"]


def test_a_template_per_purpose(make_app: Callable[..., Flask], sms_server: DysmsapiServer) -> None:
    sms_server.set_template("SMS_INTL_SIGNUP", "Sign-up code ${code}", template_type=3)
    app = make_app(
        SMSCODE_ALLOWED_REGIONS=["CN", "HK"],
        SMSCODE_ALIYUN_INTL_TEMPLATE_CODE={
            "login": INTL,
            "signup": "SMS_INTL_SIGNUP",
            "reset_password": INTL,
        },
    )
    assert send(app, "+852 5123 4567", "signup").status_code == 200
    assert sms_server.sent[-1].template_code == "SMS_INTL_SIGNUP"
    assert send(app, "+852 5123 4568", "login").status_code == 200
    assert sms_server.sent[-1].template_code == INTL


@pytest.mark.parametrize("regions", [["CN", "HK"], ["*"], ["US"], "*"])
def test_regions_abroad_without_the_template_fail_at_start_up(
    make_app: Callable[..., Flask], sms_server: DysmsapiServer, regions: Any
) -> None:
    with pytest.raises(ConfigurationError, match="SMSCODE_ALIYUN_INTL_TEMPLATE_CODE"):
        make_app(SMSCODE_ALLOWED_REGIONS=regions, SMSCODE_ALIYUN_INTL_TEMPLATE_CODE=None)
    assert sms_server.requests == []


def test_a_purpose_missing_from_the_mapping_fails_at_start_up(
    aliyun_config: dict[str, Any],
) -> None:
    config = {
        **aliyun_config,
        "SMSCODE_ALLOWED_REGIONS": ["HK"],
        "SMSCODE_ALIYUN_INTL_TEMPLATE_CODE": {"login": INTL},
    }
    with pytest.raises(ConfigurationError, match=r"SMSCODE_ALIYUN_INTL_TEMPLATE_CODE.*signup"):
        AliyunSender(config, purposes=("login", "signup"))
    with pytest.raises(ConfigurationError, match="SMSCODE_ALIYUN_INTL_TEMPLATE_CODE"):
        AliyunSender({**config, "SMSCODE_ALIYUN_INTL_TEMPLATE_CODE": ["SMS_1"]})


def test_mainland_only_needs_no_international_template(
    make_app: Callable[..., Flask], sms_server: DysmsapiServer
) -> None:
    app = make_app(SMSCODE_ALLOWED_REGIONS=["CN"], SMSCODE_ALIYUN_INTL_TEMPLATE_CODE=None)
    assert send(app, "13800138000").status_code == 200
    assert sms_server.sent[-1].template_code == DOMESTIC


def test_the_server_refuses_mixing_kinds_as_alibaba_does(
    make_app: Callable[..., Flask], sms_server: DysmsapiServer
) -> None:
    # A domestic template configured as the international one: Alibaba refuses the send,
    # the user gets the provider error, and no code is left waiting.
    app = make_app(SMSCODE_ALLOWED_REGIONS=["CN", "HK"], SMSCODE_ALIYUN_INTL_TEMPLATE_CODE=DOMESTIC)
    response = send(app, "+852 5123 4567")
    assert response.status_code == 502, response.get_json()
    assert sms_server.sent == []
    assert sms_server.requests[-1].code == "isv.SMS_TEMPLATE_ILLEGAL"
