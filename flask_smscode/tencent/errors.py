"""A failed Tencent Cloud SMS call, with only the fields it is safe to keep.

It derives from :class:`~flask_smscode.errors.FlaskSmsCodeError`, so the package's one root
catches it; it lives here because nothing outside ``tencent/`` raises it. Its text never
holds a SecretId/SecretKey, a phone number, a template parameter (the code) or the
provider's message (which may quote the request): only our sentence, the provider's code and
its request id.
"""

from __future__ import annotations

from flask_smscode.errors import FlaskSmsCodeError

__all__ = ["TencentSmsError"]


class TencentSmsError(FlaskSmsCodeError):
    """A Tencent call that did not succeed.

    ``provider_code`` is Tencent's ``Error.Code`` (request-level) or the number's
    ``SendStatus.Code``; ``request_id`` Tencent's RequestId. For a call that got no usable
    answer, ``provider_code`` is ``None`` and ``delivery_unknown`` says whether the request
    may have reached Tencent (a read timeout or reset after it was written, an unreadable
    answer); ``not_sent`` is true only when it surely did not (the connection never opened).
    """

    def __init__(
        self,
        message: str,
        *,
        provider_code: str | None = None,
        request_id: str | None = None,
        delivery_unknown: bool = False,
        not_sent: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider_code = provider_code
        self.request_id = request_id
        self.delivery_unknown = delivery_unknown
        self.not_sent = not_sent

    def __str__(self) -> str:
        parts = [self.message]
        if self.provider_code:
            parts.append(f"provider code {self.provider_code}")
        if self.request_id:
            parts.append(f"request id {self.request_id}")
        return "; ".join(parts)
