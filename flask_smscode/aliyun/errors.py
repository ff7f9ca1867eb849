"""The Alibaba Cloud client's branch of the exception tree (numeric codes 46001-46003).

They derive from :class:`~flask_smscode.errors.FlaskSmsCodeError`, so the package's one root
catches them too; they live here because nothing outside ``aliyun/`` raises them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from flask_smscode.errors import FlaskSmsCodeError

if TYPE_CHECKING:
    from flask_smscode.aliyun.sendsms import SendSmsResponse

__all__ = [
    "PARAM_MISSING",
    "PROVIDER_ERROR",
    "REQUEST_FAILED",
    "AliyunInvalidArguments",
    "AliyunProviderRefused",
    "AliyunRequestFailed",
    "AliyunSmsError",
]

# Error codes of the Alibaba Cloud client, as the low-code SMS element defined them.
PARAM_MISSING = 46001  # a parameter missing or the phone list empty: nothing sent
PROVIDER_ERROR = 46002  # Alibaba Cloud answered with an error
REQUEST_FAILED = 46003  # the request itself failed (network, timeout, unreadable answer)


class AliyunSmsError(FlaskSmsCodeError):
    """A failed Dysmsapi call of :class:`~flask_smscode.AliyunSms`.

    ``code`` is 46001 (bad arguments, nothing sent), 46002 (Alibaba Cloud answered with an
    error: ``provider_code`` and ``request_id`` say which) or 46003 (the request failed;
    ``delivery_unknown`` is true when it may have reached Alibaba Cloud — a read timeout
    after the request left — in which case it must not be retried blindly). The package
    raises the subclass of each code; ``AliyunSmsError(code, message)`` still works.
    Messages never hold a key, a phone number, a template value or a provider message.
    """

    def __init__(
        self,
        code: int,
        message: str,
        *,
        provider_code: str | None = None,
        request_id: str | None = None,
        http_status: int | None = None,
        delivery_unknown: bool = False,
        retry_after: int | None = None,
        out_id: str | None = None,
        responses: Sequence[SendSmsResponse] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.provider_code = provider_code
        self.request_id = request_id
        self.http_status = http_status
        self.delivery_unknown = delivery_unknown
        self.retry_after = retry_after
        self.out_id = out_id
        # send_message: the answer of every SendSms call made, failed ones included.
        self.responses = list(responses)

    def __str__(self) -> str:
        parts = [f"[{self.code}] {self.message}"]
        if self.provider_code:
            parts.append(f"provider code {self.provider_code}")
        if self.request_id:
            parts.append(f"request id {self.request_id}")
        return "; ".join(parts)


class AliyunInvalidArguments(AliyunSmsError):
    """46001: a parameter missing or invalid, or the phone list empty; nothing was sent."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(PARAM_MISSING, message, **fields)


class AliyunProviderRefused(AliyunSmsError):
    """46002: Alibaba Cloud answered with an error (``provider_code``, ``request_id``)."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(PROVIDER_ERROR, message, **fields)


class AliyunRequestFailed(AliyunSmsError):
    """46003: the request failed; ``delivery_unknown`` when it may have been delivered."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(REQUEST_FAILED, message, **fields)
