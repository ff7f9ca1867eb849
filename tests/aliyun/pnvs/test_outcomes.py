"""Every code of the PNVS table, answered by the loopback server as PNVS answers it (a
business code in an HTTP 200, a credential code in an HTTP 4xx), ends the send as the table
says: the right refusal, and failover only after a definite failure of the provider."""

from __future__ import annotations

import pytest

from flask_smscode.aliyun.outcomes import Meaning
from flask_smscode.aliyun.pnvs.outcomes import CODES, codes_meaning, meaning_of
from flask_smscode.aliyun.pnvs.sender import PnvsSender
from flask_smscode.errors import (
    DeliveryUnconfirmed,
    InvalidPhone,
    ProviderError,
    ProviderUnavailable,
    Throttled,
)
from tests.helpers import E164

OUT_ID = "0123456789abcdef"
# code -> (how PNVS answers it: HTTP status, the refusal the sender raises)
EXPECTED = {
    "isv.MOBILE_NUMBER_ILLEGAL": (200, InvalidPhone),
    "biz.FREQUENCY": (200, Throttled),
    "isv.BUSINESS_LIMIT_CONTROL": (200, Throttled),
    "isp.SYSTEM_ERROR": (200, ProviderUnavailable),
    "isv.OUT_OF_SERVICE": (200, ProviderUnavailable),
    "isv.PRODUCT_UNSUBSCRIBE": (200, ProviderUnavailable),
    "isv.PRODUCT_UN_SUBSCRIPT": (200, ProviderUnavailable),
    "isv.AMOUNT_NOT_ENOUGH": (200, ProviderUnavailable),
    "isv.ACCOUNT_ABNORMAL": (200, ProviderUnavailable),
    "isv.RAM_PERMISSION_DENY": (200, ProviderUnavailable),
    "isp.RAM_PERMISSION_DENY": (200, ProviderUnavailable),
    "Forbidden.RAM": (403, ProviderUnavailable),
    "isv.SMS_SIGN_ILLEGAL": (200, ProviderUnavailable),
    "isv.SMS_SIGNATURE_ILLEGAL": (200, ProviderUnavailable),
    "isv.SMS_TEMPLATE_ILLEGAL": (200, ProviderUnavailable),
    "InvalidAccessKeyId.NotFound": (404, ProviderUnavailable),
    "InvalidAccessKeyId.Inactive": (403, ProviderUnavailable),
    "SignatureDoesNotMatch": (400, ProviderUnavailable),
    "InvalidAccessKeySecret": (400, ProviderUnavailable),
}
# The gateway's messages (the SDK reads the string-to-sign out of SignatureDoesNotMatch's).
MESSAGES = {
    "SignatureDoesNotMatch": "Specified signature is not matched with our calculation. "
    "server string to sign is:POST&%2F&Action%3DOther",
}


@pytest.fixture
def sender(pnvs_config) -> PnvsSender:
    return PnvsSender(pnvs_config, purposes=("login",))


def test_every_code_of_the_table_is_tested() -> None:
    assert set(EXPECTED) == set(CODES)


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_each_code(sender, pnvs_server, code) -> None:
    status, refusal = EXPECTED[code]
    if status == 200:
        pnvs_server.fail_next(code)
    else:
        message = MESSAGES.get(code, "refused")
        pnvs_server.http_error_next(status, {"Code": code, "Message": message, "RequestId": "R1"})
    with pytest.raises(refusal) as caught:
        sender.send(E164, "123456", "login", out_id=OUT_ID)
    exc = caught.value
    assert type(exc) is refusal  # ProviderUnavailable, not merely a ProviderError
    assert exc.provider_code == code and exc.sender == "pnvs" and exc.out_id == OUT_ID
    assert exc.request_id  # for the operator's ticket
    assert exc.__context__ is None and exc.__cause__ is None
    assert pnvs_server.sent == []


def test_a_wrong_secret_is_definite(pnvs_config, pnvs_server) -> None:
    """The real server's refusal of a wrong secret, as the SDK reports it."""
    sender = PnvsSender({**pnvs_config, "SMSCODE_ALIYUN_ACCESS_KEY_SECRET": "wrong-secret"})
    with pytest.raises(ProviderUnavailable) as caught:
        sender.send(E164, "123456", "login", out_id=OUT_ID)
    # SignatureDoesNotMatch, or InvalidAccessKeySecret when the SDK's string-to-sign
    # equals the one the gateway quotes back: both mean "this secret", both fail over.
    assert meaning_of(caught.value.provider_code) is Meaning.SIGNATURE_MISMATCH
    [request] = pnvs_server.requests
    assert not request.signature_ok and request.code == "SignatureDoesNotMatch"


def test_business_codes_of_credentials_do_not_fail_over(sender, pnvs_server) -> None:
    """A credential code inside an HTTP 200 is not the gateway's verdict: no failover."""
    pnvs_server.fail_next("SignatureDoesNotMatch")
    with pytest.raises(ProviderError) as caught:
        sender.send(E164, "123456", "login", out_id=OUT_ID)
    assert type(caught.value) is ProviderError


@pytest.mark.parametrize("code", ["isv.INVALID_PARAMETERS", "isv.SOMETHING_NEW"])
def test_unknown_or_request_codes_are_provider_errors_without_failover(
    sender, pnvs_server, code
) -> None:
    pnvs_server.fail_next(code)
    with pytest.raises(ProviderError) as caught:
        sender.send(E164, "123456", "login", out_id=OUT_ID)
    assert type(caught.value) is ProviderError and caught.value.provider_code == code


@pytest.mark.parametrize("status", [500, 503])
def test_gateway_5xx_is_definite(sender, pnvs_server, status) -> None:
    pnvs_server.http_error_next(status)
    with pytest.raises(ProviderUnavailable):
        sender.send(E164, "123456", "login", out_id=OUT_ID)


def test_unreadable_answer_is_a_provider_error(sender, pnvs_server) -> None:
    pnvs_server.http_error_next(200, "<html>not json</html>")
    with pytest.raises(ProviderError) as caught:
        sender.send(E164, "123456", "login", out_id=OUT_ID)
    assert type(caught.value) is ProviderError


def test_stall_is_unconfirmed(pnvs_config, pnvs_server) -> None:
    sender = PnvsSender({**pnvs_config, "SMSCODE_PNVS_TIMEOUT_SECONDS": 0.5})
    pnvs_server.stall_next(2.0, then_record=False)
    with pytest.raises(DeliveryUnconfirmed) as caught:
        sender.send(E164, "123456", "login", out_id=OUT_ID)
    assert caught.value.out_id == OUT_ID and caught.value.sender == "pnvs"


def test_helpers_read_the_table() -> None:
    assert meaning_of("biz.FREQUENCY") is Meaning.FLOW_CONTROL
    assert meaning_of(None) is None and meaning_of("nope") is None
    assert codes_meaning(Meaning.PERMISSION) == {
        "isv.RAM_PERMISSION_DENY",
        "isp.RAM_PERMISSION_DENY",
        "Forbidden.RAM",
    }
