"""The one door to Tencent's SDK (tencentcloud-sdk-python-sms, API 2021-01-11).

Why one door: the SDK is imported here, inside functions (an app on another vendor never
loads it); its loggers are silenced (at DEBUG it logs whole requests: numbers and the
code); its exceptions are reduced to :class:`~flask_smscode.tencent.errors.TencentSmsError`
carrying safe fields only, raised outside the ``except`` blocks so no traceback chain holds
the SDK's text; and the one hard question — did a failed call send anything? — is answered
once, from the ``requests`` exception the SDK wraps:

- the connection never opened (refused, DNS, TLS handshake, connect timeout): ``not_sent``;
- anything after the request may have been written (read timeout, reset, a non-200 gateway
  answer, an unreadable body): ``delivery_unknown``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask_smscode.metrics import STATS
from flask_smscode.tencent.errors import TencentSmsError
from flask_smscode.tencent.settings import TencentSettings

API_VERSION = "2021-01-11"
PAGE_SIZE = 100  # DescribeSmsSignList / DescribeSmsTemplateList: at most 100 per call
MAX_PAGES = 20
_SDK_LOGGERS = ("tencentcloud_sdk_common",)


class _DropRecords(logging.Filter):
    """The SDK logs whole requests and answers at DEBUG (numbers, TemplateParamSet with the
    code): nothing of it may reach the app's logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


def silence_sdk_logs() -> None:
    """Drop every record of the SDK's own loggers (idempotent)."""
    for name in _SDK_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropRecords) for f in logger.filters):
            logger.addFilter(_DropRecords())


silence_sdk_logs()


@dataclass(frozen=True)
class SendStatus:
    """The status of our one number in a SendSms answer (``Code == "Ok"``: accepted)."""

    code: str
    serial_no: str | None
    request_id: str | None
    session_context: str | None


def _never_opened(exc: BaseException | None) -> bool:
    """Whether the ``requests`` exception behind a ClientNetworkError is a connection that
    never opened (so the request was never written)."""
    import requests

    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError)):
            return True
        if isinstance(exc, requests.exceptions.ConnectionError):
            from urllib3.exceptions import MaxRetryError, NewConnectionError

            reason = exc.args[0] if exc.args else None
            if isinstance(reason, MaxRetryError):
                reason = reason.reason
            return isinstance(reason, NewConnectionError)
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


class Transport:
    """A thread-safe caller of one account: one shared ``SmsClient``, a new request model
    per call."""

    def __init__(self, settings: TencentSettings) -> None:
        self.settings = settings
        self._sms: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the credentials
        return f"<tencent.Transport endpoint={self.settings.endpoint!r}>"

    def _client(self) -> Any:
        """The shared SmsClient, built on first use."""
        if self._sms is None:
            with self._lock:
                if self._sms is None:
                    from tencentcloud.common import credential
                    from tencentcloud.common.profile.client_profile import ClientProfile
                    from tencentcloud.common.profile.http_profile import HttpProfile
                    from tencentcloud.sms.v20210111 import sms_client

                    s = self.settings
                    http = HttpProfile(
                        protocol=s.protocol,
                        endpoint=s.endpoint,
                        # requests takes (connect, read): a refused connection fails fast
                        reqTimeout=(s.connect_timeout, s.timeout),
                    )
                    profile = ClientProfile(httpProfile=http, language="en-US")
                    cred = credential.Credential(s.secret_id, s.secret_key)
                    self._sms = sms_client.SmsClient(cred, s.region, profile)
        return self._sms

    def _call(self, action: str, model: Any) -> Any:
        """``SmsClient.<action>(model)``; raises TencentSmsError (see the module docstring)."""
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
            TencentCloudSDKException,
        )

        failure: TencentSmsError | None = None
        answer: Any = None
        started = time.perf_counter()
        try:
            answer = getattr(self._client(), action)(model)
        except TencentCloudSDKException as exc:
            code = str(exc.get_code() or "")
            request_id = exc.get_request_id()
            if request_id:  # Response.Error: Tencent answered and refused
                failure = TencentSmsError(
                    f"Tencent Cloud refused the {action} call",
                    provider_code=code or None,
                    request_id=str(request_id),
                )
            elif code == "ClientNetworkError":
                not_sent = _never_opened(exc.__context__)
                failure = TencentSmsError(
                    f"The {action} call could not reach Tencent Cloud"
                    if not_sent
                    else f"The {action} call got no answer (the message may have been sent)",
                    delivery_unknown=not not_sent,
                    not_sent=not_sent,
                )
            elif code in ("ClientError", "ClientParamsError", "InvalidCredential"):
                failure = TencentSmsError(f"The {action} call was not made", not_sent=True)
            else:  # ServerNetworkError (a non-200 gateway answer) or an unreadable body
                failure = TencentSmsError(
                    f"The {action} answer was unusable (the message may have been sent)",
                    delivery_unknown=True,
                )
        except Exception as exc:  # an SDK bug: the request may have gone out
            failure = TencentSmsError(
                f"The {action} call failed ({type(exc).__name__})", delivery_unknown=True
            )
        seconds = time.perf_counter() - started
        if failure is not None:
            outcome = failure.provider_code or (
                "unconfirmed" if failure.delivery_unknown else "request_failed"
            )
            STATS.provider_call(action, outcome, seconds)
            raise failure
        STATS.provider_call(action, "OK", seconds)
        return answer

    def send_sms(
        self,
        phone: str,
        template_id: str,
        params: Sequence[str],
        *,
        session_context: str,
        sign_name: str | None,
    ) -> SendStatus:
        """One SendSms to one E.164 number; the answer's status for that number (its
        ``Code`` may be an error: the caller classifies it). Raises TencentSmsError for a
        request-level failure."""
        from tencentcloud.sms.v20210111 import models

        request = models.SendSmsRequest()
        request.PhoneNumberSet = [phone]
        request.SmsSdkAppId = self.settings.sdk_app_id
        request.TemplateId = template_id
        request.TemplateParamSet = list(params)
        request.SessionContext = session_context
        if sign_name:
            request.SignName = sign_name
        response = self._call("SendSms", request)
        request_id = getattr(response, "RequestId", None)
        statuses = list(getattr(response, "SendStatusSet", None) or [])
        mine = [s for s in statuses if getattr(s, "PhoneNumber", None) == phone] or statuses
        if len(mine) != 1:
            raise TencentSmsError(
                "The SendSms answer holds no status for the number (it may have been sent)",
                request_id=request_id,
                delivery_unknown=True,
            )
        status = mine[0]
        return SendStatus(
            code=str(getattr(status, "Code", None) or ""),
            serial_no=getattr(status, "SerialNo", None),
            request_id=request_id,
            session_context=getattr(status, "SessionContext", None),
        )

    def describe_signs(self, international: bool = False) -> list[dict[str, Any]]:
        """Every signature of the account (DescribeSmsSignList, paged): SignName,
        StatusCode (0 approved, 1 reviewing, -1 rejected), ReviewReply..."""
        from tencentcloud.sms.v20210111 import models

        found: list[dict[str, Any]] = []
        for page in range(MAX_PAGES):
            request = models.DescribeSmsSignListRequest()
            request.International = 1 if international else 0
            request.Limit = PAGE_SIZE
            request.Offset = page * PAGE_SIZE
            response = self._call("DescribeSmsSignList", request)
            items = [
                json.loads(s.to_json_string()) for s in response.DescribeSignListStatusSet or []
            ]
            found += items
            if len(items) < PAGE_SIZE:
                break
        return found

    def describe_templates(
        self, template_ids: Sequence[str], international: bool = False
    ) -> list[dict[str, Any]]:
        """The given templates (DescribeSmsTemplateList): TemplateId, StatusCode (0 approved,
        1 reviewing, 2 approved not yet effective, -1 rejected), TemplateContent..."""
        from tencentcloud.sms.v20210111 import models

        request = models.DescribeSmsTemplateListRequest()
        request.International = 1 if international else 0
        request.TemplateIdSet = [int(t) for t in template_ids]
        response = self._call("DescribeSmsTemplateList", request)
        return [json.loads(s.to_json_string()) for s in response.DescribeTemplateStatusSet or []]
