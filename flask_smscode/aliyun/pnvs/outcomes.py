"""The one table of PNVS (Dypnsapi) codes: what each means to a send, to failover and to
``flask smscode doctor``. Nothing else in the package lists PNVS codes.

It reuses the *vocabulary* of the Dysmsapi table (:class:`~flask_smscode.aliyun.outcomes.
Meaning`, :class:`~flask_smscode.aliyun.outcomes.Failover`, one rule for failover: move on
only after a definite failure that lies with the provider or our account there), not its
rows: PNVS is another product with codes of its own (``biz.FREQUENCY``,
``isv.RAM_PERMISSION_DENY`` spelled with ``isv``) beside the platform's shared ones.

Sources (checked 2026-12): the PNVS API return-code page (help.aliyun.com/document_detail/
85198: ``isv.RAM_PERMISSION_DENY``, ``isv.PRODUCT_UNSUBSCRIBE``, ``isv.PRODUCT_UN_SUBSCRIPT``,
``isv.OUT_OF_SERVICE``, ``isv.MOBILE_NUMBER_ILLEGAL``, ``isv.INVALID_PARAMETERS``);
``biz.FREQUENCY`` is what SendSmsVerifyCode answers when one number is sent to more often
than the scheme's minute/hour/day limits (the same limit the PNVS SDK reports as 600016
"验证码发送频次超出限制: 同一个号码每分钟、每小时或每日发送频次超过限制"); the HTTP 4xx
credential codes are the Alibaba Cloud gateway's, common to every RPC product.

What each row does to a send:

- ``INVALID_PHONE`` -> 400 ``invalid_phone``: every provider would refuse the number;
- ``FLOW_CONTROL`` -> 429 ``throttled``, no failover: PNVS's per-number limit protects the
  user; a second provider would get around it;
- everything about the account, its permission, the signature, the template or the
  credentials -> :class:`~flask_smscode.errors.ProviderUnavailable` (502, definite: the
  next sender of a failover list may try);
- a code the table does not know -> :class:`~flask_smscode.errors.ProviderError` (502, no
  failover: it may be our own malformed request, which a backup would receive too).
"""

from __future__ import annotations

from flask_smscode.aliyun.errors import AliyunProviderRefused, AliyunRequestFailed, AliyunSmsError
from flask_smscode.aliyun.outcomes import Code, Failover, Meaning

__all__ = ["CODES", "codes_meaning", "meaning_of", "provider_down"]

_A, _H = Failover.ALWAYS, Failover.HTTP_ERROR
CODES: dict[str, Code] = {
    "isv.MOBILE_NUMBER_ILLEGAL": Code(Meaning.INVALID_PHONE),
    # PNVS's own per-number frequency control (Interval, and the scheme's hour/day caps).
    "biz.FREQUENCY": Code(Meaning.FLOW_CONTROL),
    # The platform's flow-control code, which PNVS answers for the same reason.
    "isv.BUSINESS_LIMIT_CONTROL": Code(Meaning.FLOW_CONTROL),
    "isp.SYSTEM_ERROR": Code(Meaning.PROVIDER_DOWN, _A),
    # The account's state at PNVS: a backup account or provider is not in it.
    "isv.OUT_OF_SERVICE": Code(Meaning.ACCOUNT, _A),  # suspended (arrears)
    "isv.PRODUCT_UNSUBSCRIBE": Code(Meaning.ACCOUNT, _A),  # PNVS not activated (开通)
    "isv.PRODUCT_UN_SUBSCRIPT": Code(Meaning.ACCOUNT, _A),  # ... spelled both ways
    "isv.AMOUNT_NOT_ENOUGH": Code(Meaning.ACCOUNT, _A),  # the balance is used up
    "isv.ACCOUNT_ABNORMAL": Code(Meaning.ACCOUNT, _A),  # the account is frozen
    "isv.RAM_PERMISSION_DENY": Code(Meaning.PERMISSION, _A),  # lacks dypns:SendSmsVerifyCode
    "isp.RAM_PERMISSION_DENY": Code(Meaning.PERMISSION, _A),  # the platform's spelling
    "Forbidden.RAM": Code(Meaning.PERMISSION, _H),  # the gateway's 403
    # A system signature must go with a system template ("系统赠送签名必须搭配系统赠送模板
    # 使用"); either one unknown, or the pair mismatched, fails every send of this account.
    "isv.SMS_SIGN_ILLEGAL": Code(Meaning.SIGNATURE, _A),
    "isv.SMS_SIGNATURE_ILLEGAL": Code(Meaning.SIGNATURE, _A),
    "isv.SMS_TEMPLATE_ILLEGAL": Code(Meaning.TEMPLATE, _A),
    # HTTP 4xx answers about this account's credentials (a backup has its own AccessKey).
    "InvalidAccessKeyId.NotFound": Code(Meaning.ACCESS_KEY, _H),
    "InvalidAccessKeyId.Inactive": Code(Meaning.ACCESS_KEY, _H),
    "SignatureDoesNotMatch": Code(Meaning.SIGNATURE_MISMATCH, _H),
    # What aliyunsdkcore turns SignatureDoesNotMatch into when the server's string-to-sign
    # equals its own: the request was right, so the secret is wrong.
    "InvalidAccessKeySecret": Code(Meaning.SIGNATURE_MISMATCH, _H),
}
del _A, _H


def meaning_of(provider_code: str | None) -> Meaning | None:
    """What ``provider_code`` means to PNVS, ``None`` for a code the table does not know."""
    row = CODES.get(provider_code or "")
    return row.meaning if row is not None else None


def codes_meaning(meaning: Meaning) -> frozenset[str]:
    """Every PNVS code of one meaning (doctor asks "is this a permission problem?")."""
    return frozenset(code for code, row in CODES.items() if row.meaning is meaning)


def provider_down(exc: AliyunSmsError) -> bool:
    """Whether ``exc`` is a definite failure another sender may get around (the rule of
    :func:`flask_smscode.aliyun.outcomes.provider_down`, applied to this table)."""
    if isinstance(exc, AliyunRequestFailed):
        # "could not connect" only: nothing left this machine. A read timeout or a dropped
        # connection is delivery_unknown; an unreadable answer carries no SDK code.
        return not exc.delivery_unknown and exc.provider_code == "SDK.HttpError"
    if isinstance(exc, AliyunProviderRefused):
        if exc.http_status is not None and exc.http_status >= 500:
            return True  # the gateway failed
        row = CODES.get(exc.provider_code or "")
        if row is None:
            return False
        return row.failover is Failover.ALWAYS or (
            row.failover is Failover.HTTP_ERROR and exc.http_status != 200
        )
    return False
