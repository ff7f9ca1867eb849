"""Which Alibaba Cloud failures let a send move on to the next sender (``SMSCODE_SENDER``).

The one rule, written once: move on only when the failure is *definite* (nothing was sent,
so a second SMS cannot follow the first) **and** lies with the provider or with our account
there, which another account or endpoint does not share. Everything else ends the send:

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

from ..errors import AliyunProviderRefused, AliyunRequestFailed, AliyunSmsError

# Business codes (HTTP 200) that are the provider's or the account's own state, so a
# second account (its own credit, signature, template, product subscription, volume caps
# and permissions) or a second endpoint can send where this one cannot.
FAILOVER_CODES = frozenset(
    {
        "isp.SYSTEM_ERROR",  # Alibaba's own failure; nothing sent
        "isv.OUT_OF_SERVICE",  # the account is suspended (arrears)
        "isv.AMOUNT_NOT_ENOUGH",  # the account's balance is used up
        "isv.PRODUCT_UN_SUBSCRIPT",  # SMS not activated on this account
        "isv.PRODUCT_UNSUBSCRIBE",  # ... spelled both ways by Alibaba
        "isv.ACCOUNT_NOT_EXISTS",  # the account is gone
        "isv.ACCOUNT_ABNORMAL",  # the account is frozen
        "isv.DAY_LIMIT_CONTROL",  # the account's own daily volume cap
        "isv.MONTH_LIMIT_CONTROL",  # the account's own monthly volume cap
        "isp.RAM_PERMISSION_DENY",  # this AccessKey's RAM policy lacks dysms:SendSms
        "isv.DENY_IP_RANGE",  # this account refuses our source address
        # The account's signature or template is missing, unapproved or revoked: a backup
        # account has its own approved ones (its own SMSCODE_ALIYUN_SIGN_NAME / TEMPLATE_CODE).
        # Logged at WARNING on every send, so the broken primary is not hidden by the backup.
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_SCENE_ILLEGAL",
    }
)

# HTTP 4xx codes about this account's credentials (a backup has its own AccessKey).
FAILOVER_HTTP_CODES = frozenset(
    {
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
        "SignatureDoesNotMatch",
    }
)


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
        return exc.provider_code in FAILOVER_CODES or (
            exc.http_status != 200 and exc.provider_code in FAILOVER_HTTP_CODES
        )
    return False  # 46001: our own arguments, nothing a backup would change
