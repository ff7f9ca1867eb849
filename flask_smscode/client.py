"""The one Alibaba Cloud SMS (Dysmsapi 2017-05-25) client of the package.

Usable without Flask: ``AliyunSms(key_id, key_secret, sign_name)``, ``from_config``,
``from_json("sms.json")`` or ``from_element(folder)``; then ``send_message`` (any number
of phones, split into calls of at most 1000) and ``query_send_details`` (receipts).

It wraps ``aliyun-python-sdk-core`` and defuses its traps (see the README's notes):
HTTPS is set with the SDK's own constant, business errors that arrive as HTTP 200 become
exceptions, the SDK's own log lines (which carry the AccessKeyId, the phone numbers and
the template parameters) are dropped, retries are off, timeouts are short, and no
exception text ever contains a secret, a code or a provider message.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .config import get_setting
from .errors import ConfigurationError, InvalidPhone, RegionNotAllowed
from .events import log_event
from .metrics import STATS
from .phones import mask_phone, normalize_phone, normalize_phones_fast, provider_phone
from .receipts import CHINA_TZ, DeliveryReport

API_VERSION = "2017-05-25"
MAX_PHONES_PER_CALL = 1000  # SendSms accepts at most 1000 comma-separated numbers

# Error codes of the client, as the low-code SMS element defined them.
PARAM_MISSING = 46001      # a parameter missing or the phone list empty
PROVIDER_ERROR = 46002     # Alibaba Cloud answered with an error
REQUEST_FAILED = 46003     # the request itself failed (network, timeout, unreadable answer)

_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
# Substrings of the SDK's SDK.HttpError text that mean "no request reached the server".
_NOT_SENT_MARKERS = ("Connection refused", "NewConnectionError", "ConnectTimeout",
                     "connect timeout", "NameResolutionError", "Name or service not known",
                     "nodename nor servname", "getaddrinfo", "SSLError",
                     "CERTIFICATE_VERIFY_FAILED")


class AliyunSmsError(Exception):
    """A failed Dysmsapi call.

    ``code`` is 46001 (bad arguments, nothing sent), 46002 (Alibaba Cloud answered with an
    error: ``provider_code`` and ``request_id`` say which) or 46003 (the request failed;
    ``delivery_unknown`` is true when it may have reached Alibaba Cloud — a read timeout
    after the request left — in which case it must not be retried blindly).
    """

    def __init__(self, code: int, message: str, *, provider_code: str | None = None,
                 request_id: str | None = None, http_status: int | None = None,
                 delivery_unknown: bool = False, retry_after: int | None = None,
                 responses: Sequence[SendSmsResponse] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.provider_code = provider_code
        self.request_id = request_id
        self.http_status = http_status
        self.delivery_unknown = delivery_unknown
        self.retry_after = retry_after
        # send_message: the answer of every SendSms call made, failed ones included.
        self.responses = list(responses)

    def __str__(self) -> str:
        parts = [f"[{self.code}] {self.message}"]
        if self.provider_code:
            parts.append(f"provider code {self.provider_code}")
        if self.request_id:
            parts.append(f"request id {self.request_id}")
        return "; ".join(parts)


@dataclass(frozen=True)
class SendSmsResponse:
    """Alibaba Cloud's answer to one SendSms call."""

    code: str
    message: str
    biz_id: str | None
    request_id: str | None
    out_id: str | None = None
    phone_numbers: tuple[str, ...] = field(default=(), repr=False)
    error: AliyunSmsError | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.code == "OK"

    def as_dict(self) -> dict[str, Any]:
        """The provider's field names: Code, Message, BizId, RequestId (plus OutId)."""
        return {"Code": self.code, "Message": self.message, "BizId": self.biz_id,
                "RequestId": self.request_id, "OutId": self.out_id}


class _DropRecords(logging.Filter):
    """The SDK logs whole URLs and server string-to-sign texts (AccessKeyId, phone numbers,
    TemplateParam with the code) at ERROR and DEBUG; raising its level does not stop them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


_SDK_LOGGERS = ("aliyunsdkcore", "aliyunsdkcore.client", "aliyunsdkcore.http.http_response",
                "aliyunsdkcore.retry.retry_condition",
                "aliyunsdkcore.auth.signers.access_key_signer")


def silence_sdk_logs() -> None:
    """Drop every record of the SDK's own loggers (idempotent)."""
    for name in _SDK_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropRecords) for f in logger.filters):
            logger.addFilter(_DropRecords())


silence_sdk_logs()


def _is_loopback(endpoint: str) -> bool:
    host = urlsplit(f"//{endpoint}").hostname or ""
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


class AliyunSms:
    """A thread-safe Dysmsapi client: one instance per app or process is enough.

    Credentials fall back to ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``_SECRET`` from the
    environment, the convention of Alibaba's own tools.
    """

    def __init__(self, access_key_id: str | None = None, access_key_secret: str | None = None,
                 sign_name: str | None = None, *, region: str = "cn-hangzhou",
                 endpoint: str = "dysmsapi.aliyuncs.com", protocol: str = "https",
                 timeout: float = 5.0, connect_timeout: float | None = None,
                 max_concurrency: int = 4, default_region: str = "CN",
                 allowed_regions: Iterable[str] | None = ("CN",)) -> None:
        access_key_id = access_key_id or os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
        access_key_secret = access_key_secret or os.environ.get(
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        if not access_key_id:
            raise ConfigurationError("SMSCODE_ALIYUN_ACCESS_KEY_ID (or the environment "
                                     "variable ALIBABA_CLOUD_ACCESS_KEY_ID) is not set.")
        if not access_key_secret:
            raise ConfigurationError("SMSCODE_ALIYUN_ACCESS_KEY_SECRET (or the environment "
                                     "variable ALIBABA_CLOUD_ACCESS_KEY_SECRET) is not set.")
        protocol = str(protocol).lower()
        if protocol not in ("https", "http"):
            raise ConfigurationError("SMSCODE_ALIYUN_PROTOCOL must be 'https' or 'http'.")
        if protocol == "http" and not _is_loopback(endpoint):
            raise ConfigurationError(
                "SMSCODE_ALIYUN_PROTOCOL 'http' is only allowed for a loopback "
                "SMSCODE_ALIYUN_ENDPOINT: plain HTTP puts the AccessKeyId and the code on "
                "the wire in clear.")
        if not isinstance(timeout, (int, float)) or not 0 < timeout <= 60:
            raise ConfigurationError("SMSCODE_ALIYUN_TIMEOUT_SECONDS must be in (0, 60].")
        self._access_key_id = access_key_id
        self._access_key_secret = access_key_secret
        self.sign_name = sign_name
        self.region = region
        self.endpoint = endpoint
        self.protocol = protocol
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout or min(timeout, 3.0))
        self.max_concurrency = max(1, int(max_concurrency))
        self.default_region = default_region
        self.allowed_regions = None if allowed_regions is None else tuple(allowed_regions)
        self._acs: Any = None
        self._acs_lock = threading.Lock()

    def __repr__(self) -> str:  # never show the secret
        return (f"<AliyunSms endpoint={self.endpoint!r} region={self.region!r} "
                f"sign_name={self.sign_name!r}>")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AliyunSms:
        """Build from the ``SMSCODE_ALIYUN_*`` keys of a Flask config (or any mapping)."""

        def get(key: str) -> Any:
            return get_setting(config, key)

        return cls(get("SMSCODE_ALIYUN_ACCESS_KEY_ID"), get("SMSCODE_ALIYUN_ACCESS_KEY_SECRET"),
                   get("SMSCODE_ALIYUN_SIGN_NAME"), region=get("SMSCODE_ALIYUN_REGION"),
                   endpoint=get("SMSCODE_ALIYUN_ENDPOINT"),
                   protocol=get("SMSCODE_ALIYUN_PROTOCOL"),
                   timeout=get("SMSCODE_ALIYUN_TIMEOUT_SECONDS"),
                   default_region=str(get("SMSCODE_DEFAULT_REGION")).upper(),
                   allowed_regions=_regions(get("SMSCODE_ALLOWED_REGIONS")))

    @classmethod
    def from_json(cls, path: str | os.PathLike[str], **overrides: Any) -> AliyunSms:
        """Build from a low-code ``sms.json``: ``{"accessKey", "accessSecret", "verifySign"}``.

        Keyword arguments (``endpoint``, ``protocol``, ``timeout``...) override the file.
        A missing file or key raises :class:`AliyunSmsError` 46001 naming it.
        """
        data = _read_json_object(Path(path))
        for key in ("accessKey", "accessSecret", "verifySign"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise AliyunSmsError(PARAM_MISSING, f"{Path(path).name} has no {key!r}")
        return cls(data["accessKey"], data["accessSecret"], data["verifySign"], **overrides)

    @classmethod
    def from_element(cls, folder: str | os.PathLike[str], **overrides: Any) -> AliyunSms:
        """Build from a low-code element folder: ``e.json`` (type ``SMS.Aliyun``) beside
        ``sms.json`` (found under its ``backendBundleEntry``, default ``.``)."""
        root = Path(folder)
        element = _read_json_object(root / "e.json")
        if element.get("type") != "SMS.Aliyun":
            raise AliyunSmsError(PARAM_MISSING, f"e.json has type {element.get('type')!r}; "
                                                "this client only loads 'SMS.Aliyun' elements")
        entry = element.get("backendBundleEntry") or "."
        if not isinstance(entry, str):
            raise AliyunSmsError(PARAM_MISSING, "e.json backendBundleEntry must be a path")
        return cls.from_json(root / entry / "sms.json", **overrides)

    # -- the SDK -------------------------------------------------------------------------
    def _client(self) -> Any:
        """The shared AcsClient, built on first use (importing the SDK costs ~0.1 s)."""
        if self._acs is None:
            with self._acs_lock:
                if self._acs is None:
                    from aliyunsdkcore.client import AcsClient

                    self._acs = AcsClient(
                        self._access_key_id, self._access_key_secret, self.region,
                        auto_retry=False, max_retry_time=0, timeout=self.timeout,
                        connect_timeout=self.connect_timeout,
                        # the SDK honours HTTP_PROXY but ignores NO_PROXY
                        proxy={"http": None, "https": None},
                        pool_size=max(10, self.max_concurrency))
        return self._acs

    def call(self, action: str, params: Mapping[str, str]) -> dict[str, Any]:
        """Make one Dysmsapi RPC call and return the decoded JSON answer.

        Raises :class:`AliyunSmsError` 46002 for an HTTP error answer and 46003 when the
        request failed; a ``Code`` other than ``OK`` in a 200 answer is left to the caller.
        """
        from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
        from aliyunsdkcore.http import protocol_type
        from aliyunsdkcore.request import CommonRequest

        request = CommonRequest(domain=self.endpoint, version=API_VERSION, action_name=action)
        request.set_method("POST")
        # The SDK compares with `is`: only its own constants select HTTPS reliably.
        request.set_protocol_type(protocol_type.HTTPS if self.protocol == "https"
                                  else protocol_type.HTTP)
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
            failure = AliyunSmsError(
                PROVIDER_ERROR,
                f"Alibaba Cloud refused the {action} call (HTTP {exc.get_http_status()})",
                provider_code=exc.get_error_code(), request_id=exc.get_request_id(),
                http_status=exc.get_http_status())
        except ClientException as exc:
            text = str(exc.get_error_msg() or "")
            not_sent = any(marker in text for marker in _NOT_SENT_MARKERS)
            kind = "could not reach Alibaba Cloud" if not_sent else \
                "got no answer from Alibaba Cloud (the message may have been sent)"
            failure = AliyunSmsError(REQUEST_FAILED, f"The {action} call {kind}",
                                     provider_code=exc.get_error_code(),
                                     delivery_unknown=not not_sent)
        except Exception as exc:  # the SDK raises e.g. IndexError on some 400 answers
            failure = AliyunSmsError(REQUEST_FAILED,
                                     f"The {action} call failed ({type(exc).__name__})")
        if failure is not None:
            outcome = failure.provider_code if failure.code == PROVIDER_ERROR else \
                ("unconfirmed" if failure.delivery_unknown else "request_failed")
            STATS.provider_call(action, outcome or "error", time.perf_counter() - started)
            raise failure
        try:
            answer = json.loads(body)
            if not isinstance(answer, dict):
                raise ValueError
        except ValueError:
            STATS.provider_call(action, "invalid_answer", time.perf_counter() - started)
            raise AliyunSmsError(REQUEST_FAILED,
                                 f"The {action} answer was not a JSON object") from None
        STATS.provider_call(action, str(answer.get("Code") or "no_code"),
                            time.perf_counter() - started)
        return answer

    # -- SendSms -------------------------------------------------------------------------
    def send_sms(self, phone_numbers: list[str] | tuple[str, ...], template_code: str,
                 params: Mapping[str, Any] | None = None, *, out_id: str | None = None,
                 sign_name: str | None = None) -> SendSmsResponse:
        """One SendSms call to at most 1000 numbers, already in the provider's format.

        Parameter values are sent as strings (Alibaba rejects others). Raises
        :class:`AliyunSmsError` unless Alibaba Cloud answered ``Code == "OK"``.
        """
        sign = sign_name or self.sign_name
        if not phone_numbers:
            raise AliyunSmsError(PARAM_MISSING, "The phone list is empty")
        if len(phone_numbers) > MAX_PHONES_PER_CALL:
            raise AliyunSmsError(PARAM_MISSING, f"SendSms takes at most {MAX_PHONES_PER_CALL} "
                                                "numbers per call")
        if not sign:
            raise AliyunSmsError(PARAM_MISSING, "No sign name (verifySign / "
                                                "SMSCODE_ALIYUN_SIGN_NAME) was given")
        if not template_code:
            raise AliyunSmsError(PARAM_MISSING, "No template code was given")
        out_id = out_id or uuid.uuid4().hex
        template_param = json.dumps({str(k): _as_text(v) for k, v in (params or {}).items()},
                                    ensure_ascii=False, separators=(",", ":"))
        answer = self.call("SendSms", {
            "PhoneNumbers": ",".join(phone_numbers), "SignName": sign,
            "TemplateCode": template_code, "TemplateParam": template_param, "OutId": out_id,
        })
        response = SendSmsResponse(
            code=str(answer.get("Code", "")), message=str(answer.get("Message", "")),
            biz_id=answer.get("BizId"), request_id=answer.get("RequestId"), out_id=out_id,
            phone_numbers=tuple(phone_numbers))
        if not response.ok:
            raise AliyunSmsError(
                PROVIDER_ERROR, f"Alibaba Cloud answered SendSms with {response.code or 'no code'}",
                provider_code=response.code or None, request_id=response.request_id,
                http_status=200, retry_after=_flow_control_wait(response))
        return response


    # -- notifications -------------------------------------------------------------------
    def normalize_phones(self, phone_list: Iterable[str] | str) -> tuple[list[str], list[str]]:
        """Split ``phone_list`` (or a comma/space separated string) into valid E.164
        numbers, de-duplicated in their first order, and the invalid entries as given."""
        entries = _entries(phone_list)
        valid: dict[str, None] = {}
        invalid: list[str] = []
        for raw, e164 in zip(entries, self._normalize_entries(entries), strict=True):
            if e164 is None:
                invalid.append(raw if isinstance(raw, str) else repr(raw))
            else:
                valid[e164] = None
        return list(valid), invalid

    def _normalize_entries(self, entries: Sequence[object]) -> list[str | None]:
        """E.164 of each entry, ``None`` for invalid ones. Well-formed mainland mobiles take
        the fast path (about 1 µs a number, the same decisions); the rest a full parse."""
        numbers = normalize_phones_fast(entries, self.default_region, self.allowed_regions)
        for index, e164 in enumerate(numbers):
            if e164 is None:
                try:
                    numbers[index] = normalize_phone(
                        entries[index], self.default_region,  # type: ignore[arg-type]
                        self.allowed_regions)
                except (InvalidPhone, RegionNotAllowed):
                    pass
        return numbers

    def send_message(self, phone_list: Iterable[str] | str, params: Mapping[str, Any] | None,
                     template_code: str | None, *, out_id: str | None = None,
                     sign_name: str | None = None, skip_invalid: bool = False,
                     on_batch: Callable[[SendSmsResponse], None] | None = None,
                     ) -> list[SendSmsResponse]:
        """Send one template to many phones; return one answer per SendSms call made.

        Numbers are normalised and de-duplicated, then sent in calls of at most 1000,
        ``max_concurrency`` at a time; ``on_batch`` is called (in this thread) as each
        call finishes. Parameter values are sent as strings. Errors: 46001 when the list
        is empty, a parameter is missing or (unless ``skip_invalid``) a number is invalid;
        after every call ran, 46002/46003 if any failed, with ``.responses`` holding
        every call's answer so the caller sees what went out.

        The list is parsed while the calls run: each batch of 1000 leaves as soon as it is
        parsed. Without ``skip_invalid`` every number is checked first (an invalid one
        must stop the whole notification before anything is sent), with the fast path
        that makes 100,000 numbers a fraction of a second.
        """
        if not template_code:
            raise AliyunSmsError(PARAM_MISSING, "No template code was given")
        if params is None or not isinstance(params, Mapping):
            raise AliyunSmsError(PARAM_MISSING, "The template parameters must be an object")
        if not (sign_name or self.sign_name):
            raise AliyunSmsError(PARAM_MISSING, "No sign name (verifySign / "
                                                "SMSCODE_ALIYUN_SIGN_NAME) was given")
        entries = _entries(phone_list or [])
        numbers: Iterable[str | None]
        if skip_invalid:  # parsed while sending, one batch ahead of the calls in flight
            numbers = (e164 for start in range(0, len(entries), MAX_PHONES_PER_CALL)
                       for e164 in self._normalize_entries(
                           entries[start:start + MAX_PHONES_PER_CALL]))
        else:
            numbers = self._normalize_entries(entries)
            invalid = [raw for raw, e164 in zip(entries, numbers, strict=True)
                       if e164 is None]
            if invalid:
                shown = ", ".join(_mask_raw(raw if isinstance(raw, str) else repr(raw))
                                  for raw in invalid[:5])
                raise AliyunSmsError(PARAM_MISSING, f"{len(invalid)} entr(ies) of the phone "
                                                    f"list are not valid mobile numbers: "
                                                    f"{shown}")
        answers = self._send_batches(_batches(numbers), template_code, params, out_id,
                                     sign_name, on_batch)
        if not answers:  # every entry was invalid and skipped: nothing was sent
            raise AliyunSmsError(PARAM_MISSING, "The phone list is empty")
        failed = [r for r in answers if not r.ok]
        if failed:
            first = failed[0].error
            provider_side = any(r.error is not None and r.error.code == PROVIDER_ERROR
                                for r in failed)
            raise AliyunSmsError(
                PROVIDER_ERROR if provider_side else REQUEST_FAILED,
                f"{len(failed)} of {len(answers)} SendSms call(s) failed "
                f"({sum(len(r.phone_numbers) for r in failed)} number(s))",
                provider_code=first.provider_code if first else None,
                request_id=first.request_id if first else None,
                delivery_unknown=any(r.error is not None and r.error.delivery_unknown
                                     for r in failed),
                responses=answers)
        return answers

    def _send_batches(self, batches: Iterator[list[str]], template_code: str,
                      params: Mapping[str, Any], out_id: str | None, sign_name: str | None,
                      on_batch: Callable[[SendSmsResponse], None] | None,
                      ) -> list[SendSmsResponse]:
        """Submit each batch as it is produced, ``max_concurrency`` in flight; the answers
        in batch order. The next batch is parsed while the calls in flight wait."""
        results: dict[int, SendSmsResponse] = {}
        pending: dict[Future[SendSmsResponse], int] = {}

        def collect(done: Iterable[Future[SendSmsResponse]]) -> None:
            for future in done:
                response = future.result()
                results[pending.pop(future)] = response
                if on_batch is not None:
                    on_batch(response)

        with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="smscode-send") as pool:
            for index, batch in enumerate(batches):
                while len(pending) >= self.max_concurrency:
                    collect(wait(pending, return_when=FIRST_COMPLETED).done)
                pending[pool.submit(self._send_batch, batch, template_code, params, out_id,
                                    sign_name)] = index
            while pending:
                collect(wait(pending, return_when=FIRST_COMPLETED).done)
        return [results[index] for index in sorted(results)]

    def sendMessage(self, phoneList: Iterable[str] | str | None = None,
                    params: Mapping[str, Any] | None = None,
                    verifyTemplateCode: str | None = None,
                    **kwargs: Any) -> list[SendSmsResponse]:
        """The low-code element's spelling of :meth:`send_message`."""
        return self.send_message(phoneList or [], params, verifyTemplateCode, **kwargs)

    def _send_batch(self, phones: list[str], template_code: str, params: Mapping[str, Any],
                    out_id: str | None, sign_name: str | None) -> SendSmsResponse:
        out_id = out_id or uuid.uuid4().hex
        started = time.perf_counter()
        try:
            response = self.send_sms(phones, template_code, params, out_id=out_id,
                                     sign_name=sign_name)
        except AliyunSmsError as exc:
            response = SendSmsResponse(
                code=exc.provider_code or "REQUEST_FAILED", message=exc.message, biz_id=None,
                request_id=exc.request_id, out_id=out_id, phone_numbers=tuple(phones),
                error=exc)
        log_event(logging.INFO if response.ok else logging.WARNING, "notify",
                  phones=len(phones), template=template_code,
                  outcome="sent" if response.ok else "failed", provider_code=response.code,
                  request_id=response.request_id, biz_id=response.biz_id, out_id=out_id,
                  latency_ms=round((time.perf_counter() - started) * 1000, 1))
        return response

    # -- delivery receipts ---------------------------------------------------------------
    def query_send_details(self, phone: str, biz_id: str | None = None,
                           send_date: date | str | None = None, page_size: int = 10,
                           page: int = 1) -> DeliveryReport:
        """Receipts of the messages sent to ``phone`` on ``send_date`` (China time, today by
        default; Alibaba keeps 30 days), newest first, one page at a time."""
        try:
            e164 = normalize_phone(phone, self.default_region, None)
        except InvalidPhone:
            raise AliyunSmsError(PARAM_MISSING, "The phone number is not valid") from None
        if not isinstance(page_size, int) or not 1 <= page_size <= 50:
            raise AliyunSmsError(PARAM_MISSING, "page_size must be from 1 to 50")
        if not isinstance(page, int) or page < 1:
            raise AliyunSmsError(PARAM_MISSING, "page must be 1 or more")
        answer = self.call("QuerySendDetails", {
            "PhoneNumber": provider_phone(e164), "SendDate": _send_date(send_date),
            "PageSize": str(page_size), "CurrentPage": str(page), "BizId": biz_id or None,
        })
        if answer.get("Code") != "OK":
            raise AliyunSmsError(
                PROVIDER_ERROR, f"Alibaba Cloud answered QuerySendDetails with "
                                f"{answer.get('Code') or 'no code'}",
                provider_code=answer.get("Code") or None, request_id=answer.get("RequestId"),
                http_status=200)
        return DeliveryReport.from_answer(answer, biz_id)


def _entries(phone_list: Iterable[str] | str) -> list[Any]:
    """The entries of a phone list (or of a comma/semicolon/space separated string), blank
    strings dropped."""
    if isinstance(phone_list, str):
        return phone_list.replace(",", " ").replace(";", " ").split()
    return [raw for raw in phone_list if not (isinstance(raw, str) and not raw.strip())]


def _batches(numbers: Iterable[str | None]) -> Iterator[list[str]]:
    """Valid numbers (``None`` = invalid, skipped), de-duplicated in their first order, in
    the provider's format, ``MAX_PHONES_PER_CALL`` at a time, produced as they are read."""
    seen: set[str] = set()
    batch: list[str] = []
    for e164 in numbers:
        if e164 is None or e164 in seen:
            continue
        seen.add(e164)
        batch.append(provider_phone(e164))
        if len(batch) == MAX_PHONES_PER_CALL:
            yield batch
            batch = []
    if batch:
        yield batch


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def _flow_control_wait(response: SendSmsResponse) -> int | None:
    """Seconds to wait after isv.BUSINESS_LIMIT_CONTROL, from the window its message names."""
    if response.code != "isv.BUSINESS_LIMIT_CONTROL":
        return None
    if "天" in response.message or "day" in response.message.lower():
        return 86400
    if "小时" in response.message or "hour" in response.message.lower():
        return 3600
    return 60


def _regions(value: Any) -> tuple[str, ...] | None:
    regions = [value] if isinstance(value, str) else list(value)
    return None if "*" in regions else tuple(r.upper() for r in regions)


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise AliyunSmsError(PARAM_MISSING, f"{path} does not exist") from None
    except (OSError, ValueError):
        raise AliyunSmsError(PARAM_MISSING, f"{path} is not readable JSON") from None
    if not isinstance(data, dict):
        raise AliyunSmsError(PARAM_MISSING, f"{path} must hold a JSON object")
    return data


def _send_date(value: date | str | None) -> str:
    """``yyyyMMdd`` in China time; accepts a date, a datetime, ``20261121`` or ``2026-11-21``."""
    if value is None:
        return datetime.now(CHINA_TZ).strftime("%Y%m%d")
    if isinstance(value, datetime):
        return (value.astimezone(CHINA_TZ) if value.tzinfo else value).strftime("%Y%m%d")
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    text = str(value).strip().replace("-", "")
    try:
        return datetime.strptime(text, "%Y%m%d").strftime("%Y%m%d")
    except ValueError:
        raise AliyunSmsError(PARAM_MISSING, "send_date must be a date, YYYYMMDD or "
                                            "YYYY-MM-DD") from None


def _mask_raw(raw: str) -> str:
    """An invalid entry may not parse as a phone: show only its last two characters."""
    try:
        return mask_phone(normalize_phone(raw, "CN", None))
    except (InvalidPhone, RegionNotAllowed):
        return "***" + raw.strip()[-2:]
