"""The one door to ``aliyun-python-sdk-core``: a Dysmsapi RPC call with the SDK's traps defused.

- HTTPS is chosen with the SDK's own constant (it compares protocols with ``is``, so a
  string from config can silently mean plain HTTP);
- retries are off (SendSms is not idempotent), timeouts are short, ``HTTP_PROXY`` is
  ignored (the SDK honours it but not ``NO_PROXY``);
- a ``None`` parameter is left out (the SDK would send the string ``"None"``);
- the SDK's own log records, which hold the signed URL (AccessKeyId, phone numbers,
  TemplateParam with the code), are dropped;
- the signer percent-encodes with :mod:`.encoding` (same bytes as urllib, in C: a
  1000-number SendSms no longer spends milliseconds escaping its commas);
- every SDK exception, ``IndexError`` on some 400 answers included, becomes an
  :class:`~flask_smscode.errors.AliyunSmsError` raised *outside* the ``except`` block, so no
  traceback chain holds the SDK's text.

The SDK is imported on the first call (~0.1 s): ``import flask_smscode`` stays cheap. A V2
SDK transport could sit beside this one behind the same ``call`` method.

PNVS (``aliyun/pnvs/``, product Dypnsapi) goes through this same door unchanged: its API
version is also 2017-05-25 and its host comes from the settings' ``endpoint``
(``SMSCODE_PNVS_ENDPOINT``), so one ``Transport`` per product's settings is all it takes.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from flask_smscode.aliyun.errors import AliyunProviderRefused, AliyunRequestFailed, AliyunSmsError
from flask_smscode.aliyun.settings import AliyunSettings
from flask_smscode.metrics import STATS

API_VERSION = "2017-05-25"

# Substrings of the SDK's SDK.HttpError text that mean "no request reached the server".
_NOT_SENT_MARKERS = (
    "Connection refused",
    "NewConnectionError",
    "ConnectTimeout",
    "connect timeout",
    "NameResolutionError",
    "Name or service not known",
    "nodename nor servname",
    "getaddrinfo",
    "SSLError",
    "CERTIFICATE_VERIFY_FAILED",
)


class _DropRecords(logging.Filter):
    """The SDK logs whole URLs and server string-to-sign texts (AccessKeyId, phone numbers,
    TemplateParam with the code) at ERROR and DEBUG; raising its level does not stop them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


_SDK_LOGGERS = (
    "aliyunsdkcore",
    "aliyunsdkcore.client",
    "aliyunsdkcore.http.http_response",
    "aliyunsdkcore.retry.retry_condition",
    "aliyunsdkcore.auth.signers.access_key_signer",
)


def silence_sdk_logs() -> None:
    """Drop every record of the SDK's own loggers (idempotent)."""
    for name in _SDK_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropRecords) for f in logger.filters):
            logger.addFilter(_DropRecords())


silence_sdk_logs()


class Transport:
    """A thread-safe Dysmsapi caller; one shared ``AcsClient``, a new request per call
    (the SDK mutates a request while signing it)."""

    def __init__(self, settings: AliyunSettings) -> None:
        self.settings = settings
        self._acs: Any = None
        self._acs_lock = threading.Lock()

    def __repr__(self) -> str:  # never show the secret
        return f"<Transport endpoint={self.settings.endpoint!r}>"

    def _client(self) -> Any:
        """The shared AcsClient, built on first use (importing the SDK costs ~0.1 s)."""
        if self._acs is None:
            with self._acs_lock:
                if self._acs is None:
                    from aliyunsdkcore.client import AcsClient

                    from flask_smscode.aliyun.encoding import install

                    install()  # the signer's percent-encoding in C, byte-identical

                    s = self.settings
                    self._acs = AcsClient(
                        s.access_key_id,
                        s.access_key_secret,
                        s.region,
                        auto_retry=False,
                        max_retry_time=0,
                        timeout=s.timeout,
                        connect_timeout=s.connect_timeout,
                        # the SDK honours HTTP_PROXY but ignores NO_PROXY
                        proxy={"http": None, "https": None},
                        pool_size=max(10, s.max_concurrency),
                    )
        return self._acs

    def call(
        self, action: str, params: Mapping[str, str | None], *, domain: str | None = None
    ) -> dict[str, Any]:
        """Make one Dysmsapi RPC call and return the decoded JSON answer.

        ``domain`` sends it to another product of the same RPC version and signature instead
        (Dybaseapi's ``QueryTokenForMnsQueue``, for the message queue: aliyun/queue.py).

        Raises 46002 (:class:`AliyunProviderRefused`) for an HTTP error answer and 46003
        (:class:`AliyunRequestFailed`) when the request failed; a ``Code`` other than
        ``OK`` in a 200 answer is left to the caller (business errors arrive as HTTP 200).
        """
        # The SDK ships no type information: its names are Any behind this typed method.
        from aliyunsdkcore.acs_exception.exceptions import (
            ClientException,
            ServerException,
        )
        from aliyunsdkcore.http import protocol_type
        from aliyunsdkcore.request import CommonRequest

        request = CommonRequest(
            domain=domain or self.settings.endpoint, version=API_VERSION, action_name=action
        )
        request.set_method("POST")
        # The SDK compares with `is`: only its own constants select HTTPS reliably.
        request.set_protocol_type(
            protocol_type.HTTPS if self.settings.protocol == "https" else protocol_type.HTTP
        )
        request.set_accept_format("json")
        for key, value in params.items():
            if value is not None:  # add_query_param(k, None) would send "None"
                request.add_query_param(key, value)
        # The SDK's exceptions carry the signed URL (AccessKeyId, numbers, TemplateParam):
        # keep only safe fields and raise outside the except blocks, so no traceback chain
        # (__context__) holds on to them.
        failure: AliyunSmsError | None = None
        body = b""
        started = time.perf_counter()
        try:
            body = self._client().do_action_with_exception(request)
        except ServerException as exc:
            failure = AliyunProviderRefused(
                f"Alibaba Cloud refused the {action} call (HTTP {exc.get_http_status()})",
                provider_code=exc.get_error_code(),
                request_id=exc.get_request_id(),
                http_status=exc.get_http_status(),
            )
        except ClientException as exc:
            text = str(exc.get_error_msg() or "")
            not_sent = any(marker in text for marker in _NOT_SENT_MARKERS)
            kind = (
                "could not reach Alibaba Cloud"
                if not_sent
                else "got no answer from Alibaba Cloud (the message may have been sent)"
            )
            failure = AliyunRequestFailed(
                f"The {action} call {kind}",
                provider_code=exc.get_error_code(),
                delivery_unknown=not not_sent,
            )
        except Exception as exc:  # the SDK raises e.g. IndexError on some 400 answers
            failure = AliyunRequestFailed(f"The {action} call failed ({type(exc).__name__})")
        if failure is not None:
            outcome = (
                failure.provider_code
                if isinstance(failure, AliyunProviderRefused)
                else ("unconfirmed" if failure.delivery_unknown else "request_failed")
            )
            STATS.provider_call(action, outcome or "error", time.perf_counter() - started)
            raise failure
        try:
            answer = json.loads(body)
            if not isinstance(answer, dict):
                raise ValueError
        except ValueError:
            STATS.provider_call(action, "invalid_answer", time.perf_counter() - started)
            raise AliyunRequestFailed(f"The {action} answer was not a JSON object") from None
        STATS.provider_call(
            action, str(answer.get("Code") or "no_code"), time.perf_counter() - started
        )
        return answer
