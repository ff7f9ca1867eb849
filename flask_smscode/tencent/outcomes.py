"""The one table of Tencent Cloud SMS codes: what each means to a send, to failover and to
``flask smscode doctor``. Nothing else in the package lists Tencent codes. Shaped like
``aliyun/outcomes.py`` (``Meaning``, ``Failover``, ``Code``), so the two tables read alike.

Tencent answers HTTP 200 in both failure shapes: ``Response.Error.Code`` when the whole
request failed (authentication, parameters, the account's limits: nothing was sent), or
``Response.SendStatusSet[i].Code`` per number (``"Ok"`` when that number's SMS was
accepted). The sender sends one number per request and classifies *that number's* status,
so the same table serves both shapes (sources: Tencent's SendSms error-code pages, API 3.0
382/59177 and 382/38780, and the SDK's ``errorcodes.py``).

Failover's one rule, as for Alibaba: move on to the next sender only when the failure is
*definite* (nothing was sent) **and** lies with the provider or with our account there
(credentials, balance, signature, template, permissions, the backend refusing the request
before sending). Everything else ends the send:

- ambiguous outcomes — ``InternalError.Timeout`` ("请求下发短信超时": the backend timed out
  talking to the carrier), ``InternalError.SendAndRecvFail``,
  ``InternalError.ParseBackendResponseFail``, ``InternalError.OtherError`` / ``UnknownError``,
  a read timeout or reset after the request was written, an unreadable answer, and **every
  code this table does not know**: the SMS may be on its way, so
  :class:`~flask_smscode.errors.DeliveryUnconfirmed` and never a second sender;
- the number (``InvalidParameterValue.IncorrectPhoneNumber``,
  ``FailedOperation.PhoneNumberInBlacklist`` — unsubscribed or on the carriers' do-not-disturb
  list —, ``LimitExceeded.AppCountryOrRegionInBlacklist``): 400 invalid_phone, every
  provider would refuse it;
- Tencent's per-number frequency limits (30 s, 1 h, a day, the same content, the console's
  delivery frequency policy) and API request limits: 429 throttled; a second vendor would get
  around a protection;
- a malformed request of ours (missing/invalid parameters, content length, URLs in
  parameters): 502 provider_error; it is our bug, the next request would carry it too.

Unknown ``AuthFailure.*`` / ``UnauthorizedOperation.*`` / ``RequestLimitExceeded.*`` codes take
the meaning of their family (:func:`row_of`), so a code Tencent adds to a well-understood
family is still classified; any other unknown code is ``UNCONFIRMED``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

OK_CODE = "Ok"  # SendStatus.Code of an accepted number


class Meaning(enum.Enum):
    """What a Tencent code says about a send."""

    INVALID_PHONE = "invalid_phone"  # the number cannot receive: 400 invalid_phone
    FLOW_CONTROL = "flow_control"  # Tencent's per-number/API limits: 429 throttled
    PROVIDER_DOWN = "provider_down"  # the backend refused before sending; nothing sent
    UNCONFIRMED = "unconfirmed"  # the SMS may have been sent: DeliveryUnconfirmed
    ACCOUNT = "account"  # the account's state: balance, arrears, SdkAppId, caps, IP allowlist
    PERMISSION = "permission"  # CAM: this SecretId may not call the action
    SIGNATURE = "signature"  # the 签名 is missing, unapproved or wrong
    TEMPLATE = "template"  # the 正文模板 is missing, unapproved or does not fit the params
    # the SecretId is unknown, invalid or disabled (a meaning, not a secret: hence the noqa)
    SECRET_ID = "secret_id"  # noqa: S105
    SIGNATURE_MISMATCH = "signature_mismatch"  # the SecretKey does not match (TC3 signature)
    CLOCK = "clock"  # X-TC-Timestamp more than 5 minutes off Tencent's clock
    REQUEST = "request"  # our request is malformed: 502 provider_error, no failover


class Failover(enum.Enum):
    """When a code lets a send move on to the next sender."""

    NEVER = "never"
    ALWAYS = "always"  # definite, and the account's or provider's own state


@dataclass(frozen=True)
class Code:
    meaning: Meaning
    failover: Failover = Failover.NEVER
    retry_after: int | None = None  # seconds, for FLOW_CONTROL


_A = Failover.ALWAYS
_M = Meaning
CODES: dict[str, Code] = {
    # -- the number
    "InvalidParameterValue.IncorrectPhoneNumber": Code(_M.INVALID_PHONE),
    "FailedOperation.PhoneNumberInBlacklist": Code(_M.INVALID_PHONE),  # unsubscribed / DND
    "FailedOperation.PhoneNumberParseFail": Code(_M.INVALID_PHONE),
    "LimitExceeded.AppCountryOrRegionInBlacklist": Code(_M.INVALID_PHONE),  # region blocked
    # -- frequency limits (per number, and of the API): 429 with the window as Retry-After
    "LimitExceeded.PhoneNumberThirtySecondLimit": Code(_M.FLOW_CONTROL, retry_after=30),
    "LimitExceeded.PhoneNumberOneHourLimit": Code(_M.FLOW_CONTROL, retry_after=3600),
    "LimitExceeded.PhoneNumberDailyLimit": Code(_M.FLOW_CONTROL, retry_after=86400),
    "LimitExceeded.PhoneNumberSameContentDailyLimit": Code(_M.FLOW_CONTROL, retry_after=86400),
    "LimitExceeded.DeliveryFrequencyLimit": Code(_M.FLOW_CONTROL, retry_after=60),
    "RequestLimitExceeded": Code(_M.FLOW_CONTROL, retry_after=1),
    "RequestLimitExceeded.IPLimitExceeded": Code(_M.FLOW_CONTROL, retry_after=1),
    "RequestLimitExceeded.UinLimitExceeded": Code(_M.FLOW_CONTROL, retry_after=1),
    "RequestLimitExceeded.GlobalRegionUinLimitExceeded": Code(_M.FLOW_CONTROL, retry_after=1),
    # -- the account: a second account or vendor has its own balance, app and caps
    "FailedOperation.InsufficientBalanceInSmsPackage": Code(_M.ACCOUNT, _A),
    "UnauthorizedOperation.ServiceSuspendDueToArrears": Code(_M.ACCOUNT, _A),
    "UnauthorizedOperation.SdkAppIdIsDisabled": Code(_M.ACCOUNT, _A),
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail": Code(_M.ACCOUNT, _A),
    "InvalidParameterValue.SdkAppIdNotExist": Code(_M.ACCOUNT, _A),
    "UnauthorizedOperation.RequestIpNotInWhitelist": Code(_M.ACCOUNT, _A),
    "IpInBlacklist": Code(_M.ACCOUNT, _A),
    "IpNotInWhitelist": Code(_M.ACCOUNT, _A),
    "LimitExceeded.DailyLimit": Code(_M.ACCOUNT, _A),  # the app's daily volume cap
    "LimitExceeded.AppDailyLimit": Code(_M.ACCOUNT, _A),
    "LimitExceeded.AppGlobalDailyLimit": Code(_M.ACCOUNT, _A),
    "LimitExceeded.AppMainlandChinaDailyLimit": Code(_M.ACCOUNT, _A),
    "LimitExceeded.AppCountryOrRegionDailyLimit": Code(_M.ACCOUNT, _A),
    "FailedOperation.NotEnterpriseCertification": Code(_M.ACCOUNT, _A),
    "UnsupportedOperation.UnsupportedRegion": Code(_M.ACCOUNT, _A),  # not sold there
    # -- permissions (CAM policies of this SecretId)
    "AuthFailure.UnauthorizedOperation": Code(_M.PERMISSION, _A),
    "UnauthorizedOperation.RequestPermissionDeny": Code(_M.PERMISSION, _A),
    "UnauthorizedOperation.IndividualUserMarketingSmsPermissionDeny": Code(_M.PERMISSION, _A),
    "FailedOperation.ProhibitSubAccountUse": Code(_M.PERMISSION, _A),
    # -- signature and templates: the backup has its own approved ones
    "FailedOperation.SignatureIncorrectOrUnapproved": Code(_M.SIGNATURE, _A),
    "FailedOperation.MissingSignature": Code(_M.SIGNATURE, _A),
    "FailedOperation.TemplateIncorrectOrUnapproved": Code(_M.TEMPLATE, _A),
    "FailedOperation.TemplateUnapprovedOrNotExist": Code(_M.TEMPLATE, _A),
    "FailedOperation.TemplateIdNotExist": Code(_M.TEMPLATE, _A),
    "FailedOperation.TemplateParamSetNotMatchApprovedTemplate": Code(_M.TEMPLATE, _A),
    # A verification-code template takes 0-6 digits only: SMSCODE_CODE_LENGTH > 6 fails here
    "InvalidParameterValue.TemplateParameterFormatError": Code(_M.TEMPLATE, _A),
    "InvalidParameterValue.TemplateParameterLengthLimit": Code(_M.TEMPLATE, _A),
    "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone": Code(_M.TEMPLATE, _A),
    "UnsupportedOperation.GlobalTemplateToChineseMainlandPhone": Code(_M.TEMPLATE, _A),
    # -- credentials (request-level Error): the backup has its own SecretId/SecretKey
    "AuthFailure.SecretIdNotFound": Code(_M.SECRET_ID, _A),
    "AuthFailure.InvalidSecretId": Code(_M.SECRET_ID, _A),
    "AuthFailure.SignatureFailure": Code(_M.SIGNATURE_MISMATCH, _A),
    "AuthFailure.InvalidAuthorization": Code(_M.SIGNATURE_MISMATCH, _A),
    "AuthFailure.TokenFailure": Code(_M.SECRET_ID, _A),
    "AuthFailure.MFAFailure": Code(_M.SECRET_ID, _A),
    "AuthFailure.SignatureExpire": Code(_M.CLOCK, _A),
    "InternalError.RequestTimeException": Code(_M.CLOCK, _A),  # 请求发起时间不正常
    # -- the backend refused the request before sending: definite, another vendor may send
    "InternalError.SigVerificationFail": Code(_M.PROVIDER_DOWN, _A),
    "InternalError.SigFieldMissing": Code(_M.PROVIDER_DOWN, _A),
    "InternalError.JsonParseFail": Code(_M.PROVIDER_DOWN, _A),
    "InternalError.RestApiInterfaceNotExist": Code(_M.PROVIDER_DOWN, _A),
    "ResourceUnavailable": Code(_M.PROVIDER_DOWN, _A),
    "ServiceUnavailable": Code(_M.PROVIDER_DOWN, _A),
    # -- ambiguous: the backend may have handed the SMS to the carrier
    "InternalError.Timeout": Code(_M.UNCONFIRMED),
    "InternalError.SendAndRecvFail": Code(_M.UNCONFIRMED),
    "InternalError.ParseBackendResponseFail": Code(_M.UNCONFIRMED),
    "InternalError.OtherError": Code(_M.UNCONFIRMED),
    "InternalError.UnknownError": Code(_M.UNCONFIRMED),
    "InternalError": Code(_M.UNCONFIRMED),
    "FailedOperation.OtherError": Code(_M.UNCONFIRMED),
    # -- our request: the next one would carry the same mistake
    "FailedOperation.ContainSensitiveWord": Code(_M.REQUEST),
    "FailedOperation.FailResolvePacket": Code(_M.REQUEST),
    "FailedOperation.JsonParseFail": Code(_M.REQUEST),
    "FailedOperation.ParametersOtherError": Code(_M.REQUEST),
    "FailedOperation.MarketingSendTimeConstraint": Code(_M.REQUEST),
    "InvalidParameter": Code(_M.REQUEST),
    "InvalidParameter.InvalidParameters": Code(_M.REQUEST),
    "InvalidParameter.DirtyWordFound": Code(_M.REQUEST),
    "InvalidParameter.AppidAndBizId": Code(_M.REQUEST),
    "InvalidParameterValue": Code(_M.REQUEST),
    "InvalidParameterValue.ContentLengthLimit": Code(_M.REQUEST),
    "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter": Code(_M.REQUEST),
    "InvalidParameterValue.InvalidInternational": Code(_M.REQUEST),
    "MissingParameter": Code(_M.REQUEST),
    "MissingParameter.EmptyPhoneNumberSet": Code(_M.REQUEST),
    "LimitExceeded.PhoneNumberCountLimit": Code(_M.REQUEST),  # more than 200 numbers
    "UnsupportedOperation": Code(_M.REQUEST),
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber": Code(_M.REQUEST),
    "InvalidAction": Code(_M.REQUEST),
    "NoSuchVersion": Code(_M.REQUEST),
    "UnknownParameter": Code(_M.REQUEST),
}
del _A, _M

# Families whose unknown members still have a clear meaning (longest prefix first).
_FAMILIES: tuple[tuple[str, Code], ...] = (
    ("AuthFailure.", Code(Meaning.SECRET_ID, Failover.ALWAYS)),
    ("UnauthorizedOperation.", Code(Meaning.PERMISSION, Failover.ALWAYS)),
    ("RequestLimitExceeded.", Code(Meaning.FLOW_CONTROL, retry_after=1)),
)
UNKNOWN = Code(Meaning.UNCONFIRMED)  # the ambiguous-safe default: never a second sender


def row_of(provider_code: str | None) -> Code:
    """The table's row for ``provider_code``: its own, its family's, else :data:`UNKNOWN`."""
    code = provider_code or ""
    row = CODES.get(code)
    if row is not None:
        return row
    for prefix, family in _FAMILIES:
        if code.startswith(prefix):
            return family
    return UNKNOWN


def meaning_of(provider_code: str | None) -> Meaning:
    """What ``provider_code`` means (``UNCONFIRMED`` for a code nobody knows)."""
    return row_of(provider_code).meaning


def codes_meaning(meaning: Meaning) -> frozenset[str]:
    """Every listed code of one meaning (doctor asks "is this a credentials problem?")."""
    return frozenset(code for code, row in CODES.items() if row.meaning is meaning)


def fails_over(provider_code: str | None) -> bool:
    """Whether a send refused with ``provider_code`` may move on to the next sender."""
    return row_of(provider_code).failover is Failover.ALWAYS
