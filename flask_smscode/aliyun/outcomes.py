"""The one table of Alibaba Cloud error codes: what each means to a send, to failover and to
``flask smscode doctor``. Nothing else in the package lists Alibaba codes.

Failover's one rule, written once: move on to the next sender only when the failure is
*definite* (nothing was sent, so a second SMS cannot follow the first) **and** lies with the
provider or with our account there, which another account or endpoint does not share.
Everything else ends the send:

- an ambiguous outcome (a read timeout after the request left, a dropped connection, an
  unreadable answer): the SMS may be on its way, and SendSms is not idempotent;
- a refusal about the number (``isv.MOBILE_NUMBER_ILLEGAL`` → 400 invalid_phone): every
  provider would refuse it, and trying more only spends money on pumped numbers;
- flow control (``isv.BUSINESS_LIMIT_CONTROL`` → 429): Alibaba's per-number limit is a
  protection; a second signature would get around it;
- a malformed request of ours (missing template parameters, bad JSON, parameter length,
  URLs): the backup would receive the same request.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from flask_smscode.aliyun.errors import AliyunProviderRefused, AliyunRequestFailed, AliyunSmsError
from flask_smscode.metrics import REPORTS


class Meaning(enum.Enum):
    """What an Alibaba code says about a send."""

    INVALID_PHONE = "invalid_phone"  # the number cannot receive: 400 invalid_phone
    FLOW_CONTROL = "flow_control"  # Alibaba's per-number limit: 429 throttled
    PROVIDER_DOWN = "provider_down"  # Alibaba's own failure; nothing sent
    ACCOUNT = "account"  # the account's state: credit, suspension, volume caps, source IP
    PERMISSION = "permission"  # this AccessKey's RAM policy lacks the action
    SIGNATURE = "signature"  # the signature is missing, unapproved or revoked
    TEMPLATE = "template"  # the template is missing, unapproved or revoked
    ACCESS_KEY = "access_key"  # the AccessKey id is unknown or disabled
    SIGNATURE_MISMATCH = "signature_mismatch"  # the AccessKey secret does not match


class Failover(enum.Enum):
    """When a code lets a send move on to the next sender."""

    NEVER = "never"
    ALWAYS = "always"  # a business code (HTTP 200): the account's or provider's own state
    HTTP_ERROR = "http_error"  # only as an HTTP 4xx answer (credentials of this account)


@dataclass(frozen=True)
class Code:
    meaning: Meaning
    failover: Failover = Failover.NEVER


_A, _H = Failover.ALWAYS, Failover.HTTP_ERROR
CODES: dict[str, Code] = {
    "isv.MOBILE_NUMBER_ILLEGAL": Code(Meaning.INVALID_PHONE),
    # Flow control: Alibaba's per-number 1/min, 5/h, 10/day (the day/month account caps
    # below are the account's own state, since retrying soon will not help the user).
    "isv.BUSINESS_LIMIT_CONTROL": Code(Meaning.FLOW_CONTROL),
    "isp.SYSTEM_ERROR": Code(Meaning.PROVIDER_DOWN, _A),
    # A second account (its own credit, signature, template, product subscription, volume
    # caps and permissions) or a second endpoint can send where this one cannot.
    "isv.OUT_OF_SERVICE": Code(Meaning.ACCOUNT, _A),  # suspended (arrears)
    "isv.AMOUNT_NOT_ENOUGH": Code(Meaning.ACCOUNT, _A),  # the balance is used up
    "isv.PRODUCT_UN_SUBSCRIPT": Code(Meaning.ACCOUNT, _A),  # SMS not activated
    "isv.PRODUCT_UNSUBSCRIBE": Code(Meaning.ACCOUNT, _A),  # ... spelled both ways
    "isv.ACCOUNT_NOT_EXISTS": Code(Meaning.ACCOUNT, _A),  # the account is gone
    "isv.ACCOUNT_ABNORMAL": Code(Meaning.ACCOUNT, _A),  # the account is frozen
    "isv.DAY_LIMIT_CONTROL": Code(Meaning.ACCOUNT, _A),  # the account's daily volume cap
    "isv.MONTH_LIMIT_CONTROL": Code(Meaning.ACCOUNT, _A),  # ... and monthly
    "isv.DENY_IP_RANGE": Code(Meaning.ACCOUNT, _A),  # the account refuses our address
    "isp.RAM_PERMISSION_DENY": Code(Meaning.PERMISSION, _A),  # lacks dysms:SendSms
    "Forbidden.RAM": Code(Meaning.PERMISSION),
    "Forbidden": Code(Meaning.PERMISSION),
    # The backup account has its own approved signature and templates. Logged at WARNING on
    # every send, so the broken primary is not hidden by the backup.
    "isv.SMS_SIGNATURE_ILLEGAL": Code(Meaning.SIGNATURE, _A),
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL": Code(Meaning.SIGNATURE, _A),
    "isv.SMS_SIGN_ILLEGAL": Code(Meaning.SIGNATURE),  # QuerySmsSign's spelling
    "isv.SMS_TEMPLATE_ILLEGAL": Code(Meaning.TEMPLATE, _A),
    # HTTP 4xx answers about this account's credentials (a backup has its own AccessKey).
    "InvalidAccessKeyId.NotFound": Code(Meaning.ACCESS_KEY, _H),
    "InvalidAccessKeyId.Inactive": Code(Meaning.ACCESS_KEY, _H),
    "InvalidAccessKeyId": Code(Meaning.ACCESS_KEY),
    "SignatureDoesNotMatch": Code(Meaning.SIGNATURE_MISMATCH, _H),
}
del _A, _H


def meaning_of(provider_code: str | None) -> Meaning | None:
    """What ``provider_code`` means, ``None`` for a code the table does not know."""
    row = CODES.get(provider_code or "")
    return row.meaning if row is not None else None


def codes_meaning(meaning: Meaning) -> frozenset[str]:
    """Every code of one meaning (doctor's checks ask "is this a signature problem?")."""
    return frozenset(code for code, row in CODES.items() if row.meaning is meaning)


def provider_down(exc: AliyunSmsError) -> bool:
    """Whether ``exc`` is a definite failure another sender may get around."""
    if isinstance(exc, AliyunRequestFailed):
        # Only "could not connect" (refused, DNS, TLS handshake, connect timeout): the SDK
        # reports those as SDK.HttpError without the request having left. A read timeout or
        # dropped connection is delivery_unknown; an unreadable 200 answer has no SDK code.
        return not exc.delivery_unknown and exc.provider_code == "SDK.HttpError"
    if isinstance(exc, AliyunProviderRefused):
        if exc.http_status is not None and exc.http_status >= 500:
            return True  # the gateway failed (InternalError, ServiceUnavailable, a proxy)
        row = CODES.get(exc.provider_code or "")
        if row is None:
            return False
        return row.failover is Failover.ALWAYS or (
            row.failover is Failover.HTTP_ERROR and exc.http_status != 200
        )
    return False  # 46001: our own arguments, nothing a backup would change


# -- delivery reports that teach the pumping guard (core/deliveries.py) -------------------
# A pushed report's err_code is the carrier's status, passed through by Alibaba (CMPP/SGIP
# status reports). These say the number cannot receive at all — it does not exist, is
# stopped or suspended, or is on a carrier blacklist — the mark of numbers bought or made up
# for SMS pumping: the core counts such a failed report against the number's prefix like
# one more unverified send. Temporary failures (powered off ``MK:0023``, out of coverage,
# ``EXPIRED``, flow control, content filters) are left out: real users have them too.
RECEIPTS_NUMBER_DEAD: frozenset[str] = frozenset(
    {
        "MK:0001",  # no such subscriber
        "MK:0005",  # stopped (停机)
        "MK:0013",  # stopped
        "UNDELIV",  # stopped or suspended: undeliverable
        "CB:0001",  # invalid number or empty number (空号)
        "CB:0053",  # no such subscriber
        "DB:0101",  # invalid number or empty number
        "DB:0102",  # stopped
        "MI:0054",  # empty number, stopped or off
        "MI:0059",  # empty number, stopped or off
        "MI:0073",  # empty number
        "MBBLACK",  # the number is on the local blacklist
        "DBBLACK",  # ... on the gateway's blacklist
        "DB:0144",  # ... on the gateway's blacklist
    }
)


def receipt_number_dead(err_code: str | None) -> bool:
    """Whether a failed delivery report's ``err_code`` says the number cannot receive."""
    return (err_code or "").upper() in RECEIPTS_NUMBER_DEAD


# -- delivery report codes a metric label may name (metrics.REPORTS) ---------------------
# A pushed report's err_code is text from outside (anyone's, if the receiver's secret
# leaked): only this table's codes become label values, every other one is "other"
# (issue 15: 3,000 distinct codes in one push made 3,000 series). DELIVERED is success;
# the temporary failures are the common ones an operator watches (powered off, expired,
# rejected by the gateway).
RECEIPT_LABELS: frozenset[str] = RECEIPTS_NUMBER_DEAD | {
    "DELIVERED",
    "MK:0023",  # powered off
    "EXPIRED",  # not delivered within the validity period
    "REJECTD",  # rejected by the gateway
}
REPORTS.allow(RECEIPT_LABELS)
