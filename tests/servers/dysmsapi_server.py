"""A loopback fake of Alibaba Cloud SMS (Dysmsapi, RPC version 2017-05-25).

Why: the project must be tested against the *real* ``aliyunsdkcore`` client (its signing, its
exceptions, its logging traps), not against mocks of it. This module serves the RPC protocol
over plain HTTP on 127.0.0.1 closely enough that ``AcsClient`` + ``CommonRequest`` talk to it,
checks the HMAC-SHA1 signature, timestamp and nonce like the real gateway, validates ``SendSms``
and answers ``QuerySendDetails`` from what was sent. Failure plans inject business errors,
HTTP errors, stalls (read timeouts) and dropped connections.

Usage::

    from aliyunsdkcore.client import AcsClient
    from aliyunsdkcore.http import protocol_type
    from aliyunsdkcore.request import CommonRequest

    with DysmsapiServer() as server:
        client = AcsClient("test-key-id", "test-key-secret", "cn-hangzhou", auto_retry=False,
                           proxy={"http": None, "https": None})
        req = CommonRequest(domain=server.endpoint, version="2017-05-25", action_name="SendSms")
        req.set_method("POST")
        req.set_protocol_type(protocol_type.HTTP)
        req.add_query_param("PhoneNumbers", "13800138000")
        req.add_query_param("SignName", "TestSign")
        req.add_query_param("TemplateCode", "SMS_LOGIN")
        req.add_query_param("TemplateParam", '{"code": "123456"}')
        client.do_action_with_exception(req)  # b'{"Code":"OK",...}'
        assert server.last_code("+8613800138000") == "123456"
        server.fail_next("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1")

Choices where the real service is not pinned down (all documented for the tests that rely on them):

- Missing or empty required parameters, common or action-specific, answer HTTP 400 with code
  ``Missing<Name>`` (``MissingSignatureNonce``, ``MissingPhoneNumbers``, ``MissingSendDate``...),
  as the Alibaba Cloud API gateway does. Present but invalid values of ``SendSms`` and
  ``QuerySendDetails`` parameters answer HTTP 200 with an ``isv.*`` code.
- Unknown ``Action``: HTTP 404 ``InvalidAction.NotFound``; a path other than ``/`` answers the same.
  Method other than GET/POST: HTTP 400 ``UnsupportedHTTPMethod``.
- ``Version`` other than 2017-05-25: HTTP 400 ``InvalidVersion``; ``Format`` other than JSON:
  HTTP 400 ``InvalidParameter.Format``; bad ``SignatureMethod``/``SignatureVersion``: HTTP 400
  ``InvalidSignatureMethod``/``InvalidSignatureVersion``; unparsable ``Timestamp``: HTTP 400
  ``InvalidTimeStamp.Format``.
- Mainland numbers (``1`` + 10 digits) may carry a ``+``, ``+86``, ``86`` or ``0086`` prefix (as
  Alibaba documents); international numbers are country code + number, 7-15 digits only, not
  starting with 86 nor with 1 (so a 10- or 12-digit "mainland" number is illegal).
- Template variables longer than 35 characters answer ``isv.PARAM_LENGTH_LIMIT``.
- Numbers outside the mainland (HK/MO/TW included) need an international template
  (TemplateType 3, ``SMS_INTL_CODE`` by default), in which every number is read as country
  code + number: a ``+86``/``86``/``0086`` number answers ``isv.DOMESTIC_NUMBER_NOT_SUPPORTED``
  (as Alibaba does). A domestic template with a number outside the mainland answers
  ``isv.SMS_TEMPLATE_ILLEGAL`` (Alibaba only says the two kinds cannot be mixed).
- ``SmsUpExtendCode`` (and each item of ``SmsUpExtendCodeJson``): ASCII digits, at most 7
  (Alibaba's SDK samples), else ``isv.INVALID_PARAMETERS``; recorded on ``SentSms``.
- ``SendBatchSms``: ``PhoneNumberJson``/``SignNameJson``/``TemplateParamJson``/
  ``SmsUpExtendCodeJson`` must be JSON arrays (``isv.INVALID_JSON_PARAM``) of the same length
  (``isv.INVALID_PARAMETERS``), at most 100 numbers (``isv.MOBILE_COUNT_OVER_LIMIT``); every
  sign name must exist. Each number is recorded as its own ``SentSms`` (its sign, values and
  extension code), all sharing the call's BizId, RequestId and OutId. Failure plans
  (``fail_next``, ``stall_next``) apply to SendBatchSms as to SendSms.
- ``QuerySmsSign`` / ``QuerySmsTemplate`` (what ``flask smscode doctor`` asks): an unknown sign or
  template answers HTTP 200 ``isv.SMS_SIGNATURE_ILLEGAL`` / ``isv.SMS_TEMPLATE_ILLEGAL``, the codes
  SendSms gives for them. ``SendSms`` refuses a sign or template that is not approved with the
  same codes. ``set_sign`` / ``set_template`` / ``remove_sign`` / ``remove_template`` change the
  account per test; ``reset()`` restores the signs and templates given to the constructor.
- ``clock_offset`` (seconds) moves the server's clock: its HTTP ``Date`` header and the
  ``Timestamp`` window both use it, as a real gateway on a different clock would.
- Delivery reports (SmsReport, HTTP batch push mode): ``delivery_report(sms, ...)`` builds one
  report of a message it "sent" (delivered, failed with an ``err_code``, or with a forged
  OutId); ``push_reports(url, [...])`` POSTs a JSON array of them as Alibaba does, so tests
  push delivered, failed, duplicated (the same report twice) and late (an older send's report
  after a newer one's) reports. ``push_accepted`` judges the answer as Alibaba does: HTTP 200
  with a numeric ``code``, else it pushes again (after 1, 5 and 10 minutes).
"""

# Full-width punctuation is what real Chinese SMS texts and provider messages contain.

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import itertools
import json
import random
import re
import socket
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

__all__ = [
    "API_VERSION",
    "CHINA_TZ",
    "DEFAULT_ACCOUNTS",
    "DEFAULT_SIGN_NAMES",
    "DEFAULT_TEMPLATES",
    "INTERNATIONAL_TEMPLATES",
    "DysmsapiServer",
    "RecordedRequest",
    "SentSms",
    "SignRecord",
    "TemplateRecord",
    "encode_query",
    "normalize_phone",
    "percent_encode",
    "sign",
    "signed_params",
    "string_to_sign",
]

API_VERSION = "2017-05-25"
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
HOST_ID = "dysmsapi.aliyuncs.com"

DEFAULT_ACCOUNTS: dict[str, str] = {"test-key-id": "test-key-secret"}
DEFAULT_SIGN_NAMES: frozenset[str] = frozenset({"TestSign", "阿里云短信测试"})
DEFAULT_TEMPLATES: dict[str, list[str]] = {
    "SMS_123456789": ["code"],
    "SMS_LOGIN": ["code"],
    "SMS_SIGNUP": ["code"],
    "SMS_RESET": ["code"],
    "SMS_NOTIFY": ["name", "time"],
    "SMS_INTL_CODE": ["code"],  # international (TemplateType 3): numbers outside the mainland
}
# Templates of DEFAULT_TEMPLATES that are international (TemplateType 3).
INTERNATIONAL_TEMPLATES: frozenset[str] = frozenset({"SMS_INTL_CODE"})
# Texts used to render ``Content`` in QuerySendDetails; other templates get a generic text.
_TEMPLATE_TEXTS: dict[str, str] = {
    "SMS_123456789": "您的验证码为${code}，该验证码5分钟内有效，请勿泄漏于他人！",
    "SMS_LOGIN": "您的登录验证码为${code}，5分钟内有效，请勿泄露。",
    "SMS_SIGNUP": "您正在注册，验证码为${code}，5分钟内有效。",
    "SMS_RESET": "您正在重置密码，验证码为${code}，5分钟内有效。",
    "SMS_NOTIFY": "${name}，您预约的时间为${time}。",
    "SMS_INTL_CODE": "Your verification code is ${code}. It expires in 5 minutes.",
}

MAX_PHONE_NUMBERS = 1000
MAX_BATCH_NUMBERS = 100  # SendBatchSms
MAX_EXTEND_CODE = 7  # SmsUpExtendCode: digits only, at most 7
MAX_OUT_ID = 256
MAX_TEMPLATE_VAR = 35
MAX_PAGE_SIZE = 50

_MAINLAND_RE = re.compile(r"^(?:\+86|0086|86|\+)?(1\d{10})$")
# Country code + number; a leading 1 (NANP) is always 11 digits, i.e. already "mainland" above,
# so anything else starting with 1 is a mistyped mainland number and is refused.
_INTERNATIONAL_RE = re.compile(r"^(?!86)[2-9]\d{6,14}$")
# With an international template every number is country code + number (7-15 digits), so
# an 11-digit 1... number is a US/Canada number there, not a mainland one.
_ABROAD_RE = re.compile(r"^(?!86)[1-9]\d{6,14}$")

# Messages the real service uses, so ``fail_next(code)`` without a message looks real.
_DEFAULT_MESSAGES: dict[str, str] = {
    "isv.BUSINESS_LIMIT_CONTROL": "触发分钟级流控Permits:1",
    "isv.DAY_LIMIT_CONTROL": "触发日发送限额",
    "isv.MONTH_LIMIT_CONTROL": "触发月发送限额",
    "isv.AMOUNT_NOT_ENOUGH": "账户余额不足",
    "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号",
    "isv.OUT_OF_SERVICE": "业务停机",
    "isv.BLACK_KEY_CONTROL_LIMIT": "黑名单管控",
    "isp.SYSTEM_ERROR": "isp.SYSTEM_ERROR",
}
_DEFAULT_HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("InvalidParameter", "The specified parameter is not valid."),
    403: ("Forbidden.RAM", "User not authorized to operate on the specified resource."),
    429: ("Throttling.User", "Request was denied due to user flow control."),
    500: (
        "InternalError",
        "The request processing has failed due to some unknown error, exception or failure.",
    ),
    502: ("BadGateway", "The gateway received an invalid response from the backend."),
    503: ("ServiceUnavailable", "The request has failed due to a temporary failure of the server."),
    504: ("GatewayTimeout", "The backend did not answer in time."),
}
_DELIVERY_ERR_CODES = {1: "", 2: "UNDELIVERED", 3: "DELIVERED"}
_COMMON_REQUIRED = (
    "Format",
    "Version",
    "Action",
    "RegionId",
    "Timestamp",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "AccessKeyId",
    "Signature",
)
_ACTIONS = frozenset(
    {"SendSms", "SendBatchSms", "QuerySendDetails", "QuerySmsSign", "QuerySmsTemplate"}
    | {"QueryTokenForMnsQueue"}  # Dybaseapi, same version and signature (see its method)
)
_SENDING = frozenset({"SendSms", "SendBatchSms"})  # the actions failure plans apply to

# QuerySmsSign's SignStatus / QuerySmsTemplate's TemplateStatus (help.aliyun.com 121210, 419289).
STATUS_REVIEWING, STATUS_APPROVED, STATUS_REJECTED, STATUS_CANCELLED = 0, 1, 2, 10
# QuerySmsTemplate's TemplateType.
TYPE_CODE, TYPE_NOTICE, TYPE_PROMOTION, TYPE_INTERNATIONAL = 0, 1, 2, 3
_NO_REMARK = "无审批备注"
_VARIABLE_RE = re.compile(r"\$\{([^}]+)\}")
_CREATE_DATE = "2019-01-08 16:44:13"


# --------------------------------------------------------------------------- signature


def percent_encode(value: str) -> str:
    """RFC 3986 encoding of UTF-8 bytes, as the RPC signature needs (keeps ``A-Za-z0-9-_.~``)."""
    return quote(value.encode("utf-8"), safe="-_.~")


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """The RPC v1 string-to-sign: every parameter but ``Signature``, empty values kept, sorted."""
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}"
        for k, v in sorted(params.items())
        if k != "Signature"
    )
    return f"{method.upper()}&%2F&{percent_encode(canonical)}"


def sign(method: str, params: Mapping[str, str], secret: str) -> str:
    """``base64(HMAC-SHA1(secret + "&", string_to_sign))`` — what the gateway recomputes."""
    digest = hmac.new(
        (secret + "&").encode("utf-8"),
        string_to_sign(method, params).encode("utf-8"),
        hashlib.sha1,
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def signed_params(
    action: str,
    params: Mapping[str, str] | None = None,
    *,
    access_key_id: str = "test-key-id",
    secret: str = "test-key-secret",
    method: str = "GET",
    timestamp: datetime | str | None = None,
    nonce: str | None = None,
    region_id: str = "cn-hangzhou",
) -> dict[str, str]:
    """Complete signed parameter set, for tests that bypass the SDK (replays, old timestamps)."""
    if timestamp is None:
        timestamp = datetime.now(timezone.utc)
    if isinstance(timestamp, datetime):
        timestamp = timestamp.astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT)
    full = {
        "Format": "JSON",
        "Version": API_VERSION,
        "Action": action,
        "RegionId": region_id,
        "Timestamp": timestamp,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureType": "",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce or uuid.uuid4().hex,
        "AccessKeyId": access_key_id,
        **(params or {}),
    }
    full["Signature"] = sign(method, full, secret)
    return full


def encode_query(params: Mapping[str, str]) -> str:
    """Query string with the same strict encoding the SDK uses (no ``+`` for spaces)."""
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items())


# --------------------------------------------------------------------------- records


def normalize_phone(phone: str) -> str:
    """Canonical form: mainland numbers lose any ``+``/``86``/``0086`` prefix, others lose ``+``."""
    phone = phone.strip()
    match = _MAINLAND_RE.match(phone)
    if match:
        return match.group(1)
    return phone.removeprefix("+").removeprefix("00")


def _is_valid_phone(phone: str) -> bool:
    return bool(_MAINLAND_RE.match(phone) or _INTERNATIONAL_RE.match(phone))


def _new_request_id() -> str:
    return str(uuid.uuid4()).upper()


@dataclass
class SentSms:
    """One accepted ``SendSms`` call, as the provider would have sent it."""

    phone_numbers: list[str]
    sign_name: str
    template_code: str
    template_param: dict[str, str]
    out_id: str | None
    biz_id: str
    request_id: str
    access_key_id: str
    send_date: datetime  # China time (UTC+8), aware
    content: str = ""
    sms_up_extend_code: str | None = None

    @property
    def phones(self) -> list[str]:
        """Numbers in canonical form (``13800138000``), whatever prefix the caller used."""
        return [normalize_phone(p) for p in self.phone_numbers]

    @property
    def code(self) -> str | None:
        """Shortcut for the usual ``{"code": ...}`` template variable."""
        return self.template_param.get("code")


@dataclass
class SignRecord:
    """A signature (签名) of the account, as QuerySmsSign reports it."""

    name: str
    status: int = STATUS_APPROVED  # 0 reviewing, 1 approved, 2 rejected, 10 cancelled
    reason: str = _NO_REMARK
    create_date: str = _CREATE_DATE


@dataclass
class TemplateRecord:
    """A template of the account, as QuerySmsTemplate reports it."""

    code: str
    content: str
    type: int = TYPE_CODE  # 0 verification code, 1 notice, 2 promotion, 3 international
    status: int = STATUS_APPROVED
    reason: str = _NO_REMARK
    name: str = ""
    create_date: str = _CREATE_DATE

    @property
    def variables(self) -> list[str]:
        """The ``${name}`` variables of the content, in order, each once."""
        return list(dict.fromkeys(_VARIABLE_RE.findall(self.content)))


@dataclass
class RecordedRequest:
    """Any request the server received, accepted or not; ``status`` is None if dropped."""

    method: str
    path: str
    params: dict[str, str]
    action: str | None
    signature_ok: bool = False
    status: int | None = None
    code: str | None = None
    request_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def access_key_id(self) -> str | None:
        return self.params.get("AccessKeyId")


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json;charset=utf-8"
    request_id: str | None = None
    code: str | None = None
    delay: float = 0.0
    drop: bool = False


@dataclass
class _Plan:
    kind: str  # "fail" | "http" | "stall" | "drop"
    remaining: int
    args: dict[str, Any]


class _ApiError(Exception):
    """Raised inside request processing to short-circuit with an error answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message


def _missing(name: str) -> _ApiError:
    return _ApiError(
        400,
        f"Missing{name}",
        f'The input parameter "{name}" that is mandatory for processing this request is not '
        "supplied.",
    )


def _business(code: str, message: str) -> _ApiError:
    return _ApiError(200, code, message)


# --------------------------------------------------------------------------- HTTP plumbing


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: DysmsapiServer, address: tuple[str, int]) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Keep stderr quiet; keep the traceback of a server-side bug for the test.

        A client that resets a kept-alive connection while the handler waits for its
        next request line (a client closing with an unread body in its buffer does) is
        an ordinary hang-up, as for any HTTP server, not a bug: not recorded.
        """
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        if not self.owner._stopping.is_set():
            self.owner.errors.append(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive, like the SDK's pooled requests session
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid 40 ms stalls
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header on the server's clock (``clock_offset`` lets a test skew it)."""
        moment = time.time() if timestamp is None else timestamp
        return email.utils.formatdate(moment + self.server.owner.clock_offset, usegmt=True)

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, add=False)

    def _serve(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        try:
            reply = owner._process(self.command, self.path, dict(self.headers.items()), body)
        except Exception:
            owner.errors.append(traceback.format_exc())
            reply = owner._error_reply(500, "InternalError", "Test server bug; see server.errors")
        if reply.delay > 0 and owner._stopping.wait(reply.delay):
            reply.drop = True  # stop() interrupted the stall: go away without answering
        if reply.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            if reply.request_id:
                self.send_header("x-acs-request-id", reply.request_id)
            self.end_headers()
            self.wfile.write(reply.body)
            self.wfile.flush()
        except OSError:  # client gave up (timeout) before the answer
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve


# --------------------------------------------------------------------------- the server


class DysmsapiServer:
    """Fake Dysmsapi endpoint on 127.0.0.1; ``CommonRequest(domain=server.endpoint)`` reaches it."""

    def __init__(
        self,
        accounts: dict[str, str] | None = None,
        *,
        sign_names: Iterable[str] | None = None,
        templates: Mapping[str, Iterable[str]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_clock_skew: float = 900.0,
    ) -> None:
        self.accounts: dict[str, str] = dict(DEFAULT_ACCOUNTS if accounts is None else accounts)
        self.sign_names: set[str] = set(DEFAULT_SIGN_NAMES if sign_names is None else sign_names)
        self.templates: dict[str, list[str]] = {
            k: list(v) for k, v in (DEFAULT_TEMPLATES if templates is None else templates).items()
        }
        self.signs: dict[str, SignRecord] = {}
        self.template_records: dict[str, TemplateRecord] = {}
        self.clock_offset = 0.0  # seconds the server's clock is ahead of this machine's
        self._initial_account = (
            set(self.sign_names),
            {k: list(v) for k, v in self.templates.items()},
        )
        self._restore_account()
        self.host = host
        self._requested_port = port
        self.max_clock_skew = max_clock_skew
        self.sent: list[SentSms] = []
        self.requests: list[RecordedRequest] = []
        self.errors: list[str] = []  # tracebacks of server-side bugs (never printed)
        self._reports: list[SentSms] = []  # synthetic messages from add_delivery_report()
        self.pushes: list[tuple[int, Any]] = []  # answers to push_reports()
        self._status: dict[tuple[str, str], tuple[int, str]] = {}
        self._nonces: set[tuple[str, str]] = set()
        self._plans: deque[_Plan] = deque()
        self._lock = threading.RLock()
        self._seq = itertools.count(1)
        self._stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Bind a free port and serve in a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("DysmsapiServer already started")
        self._stopping = threading.Event()
        self._httpd = _HTTPServer(self, (self.host, self._requested_port))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"DysmsapiServer:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving; stalled answers are cut short and open connections closed."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> DysmsapiServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("DysmsapiServer not started")
        return int(self._httpd.server_address[1])

    @property
    def endpoint(self) -> str:
        """``host:port``, what ``CommonRequest(domain=...)``/``set_domain`` takes."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}/"

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    # ----------------------------------------------------------------- test helpers

    def _restore_account(self) -> None:
        """Signs and templates as constructed: every one approved, texts from _TEMPLATE_TEXTS."""
        names, templates = self._initial_account
        self.sign_names = set(names)
        self.templates = {k: list(v) for k, v in templates.items()}
        self.signs = {name: SignRecord(name) for name in names}
        self.template_records = {}
        for code, variables in templates.items():
            text = _TEMPLATE_TEXTS.get(code) or "，".join(f"{n}：${{{n}}}" for n in variables)
            kind = (
                TYPE_INTERNATIONAL
                if code in INTERNATIONAL_TEMPLATES
                else TYPE_CODE
                if "code" in variables
                else TYPE_NOTICE
            )
            self.template_records[code] = TemplateRecord(code, text, kind, name=code)
        self.clock_offset = 0.0

    def set_sign(self, name: str, status: int = STATUS_APPROVED, reason: str | None = None) -> None:
        """Register (or change) a signature: 0 reviewing, 1 approved, 2 rejected, 10 cancelled."""
        with self._lock:
            self.sign_names.add(name)
            self.signs[name] = SignRecord(name, status, reason or _NO_REMARK)

    def remove_sign(self, name: str) -> None:
        """The account no longer has this signature: queries and sends answer it is illegal."""
        with self._lock:
            self.sign_names.discard(name)
            self.signs.pop(name, None)

    def set_template(
        self,
        code: str,
        content: str = "您的验证码为：${code}，5分钟内有效",
        *,
        template_type: int = TYPE_CODE,
        status: int = STATUS_APPROVED,
        reason: str | None = None,
        name: str | None = None,
    ) -> TemplateRecord:
        """Register (or change) a template; SendSms then requires the content's variables."""
        record = TemplateRecord(
            code, content, template_type, status, reason or _NO_REMARK, name or code
        )
        with self._lock:
            self.template_records[code] = record
            self.templates[code] = record.variables
        return record

    def remove_template(self, code: str) -> None:
        """The account no longer has this template."""
        with self._lock:
            self.templates.pop(code, None)
            self.template_records.pop(code, None)

    def now(self) -> datetime:
        """The server's clock (UTC), ``clock_offset`` seconds from this machine's."""
        return datetime.now(timezone.utc) + timedelta(seconds=self.clock_offset)

    def reset(self) -> None:
        """Forget sent messages, requests, failure plans, nonces and delivery statuses; restore
        the constructor's signs and templates (all approved) and the clock."""
        with self._lock:
            self._restore_account()
            self.sent.clear()
            self.requests.clear()
            self.errors.clear()
            self._reports.clear()
            self.pushes.clear()
            self._status.clear()
            self._nonces.clear()
            self._plans.clear()

    def messages_to(self, phone: str) -> list[SentSms]:
        """Accepted messages that include ``phone`` (any prefix form), oldest first."""
        wanted = normalize_phone(phone)
        with self._lock:
            return [m for m in self.sent if wanted in m.phones]

    def last_sms(self, phone: str) -> SentSms:
        """Newest accepted message to ``phone``; LookupError if none."""
        messages = self.messages_to(phone)
        if not messages:
            raise LookupError(f"no SMS sent to {phone}")
        return messages[-1]

    def last_code(self, phone: str, param: str = "code") -> str:
        """``TemplateParam[param]`` of the newest message to ``phone``; LookupError if none."""
        sms = self.last_sms(phone)
        try:
            return sms.template_param[param]
        except KeyError:
            raise LookupError(
                f"newest SMS to {phone} ({sms.template_code}) has no template param {param!r}"
            ) from None

    def fail_next(self, code: str, message: str | None = None, times: int = 1) -> None:
        """Next ``times`` SendSms answer HTTP 200 with business error ``code`` (nothing sent)."""
        self._add_plan(
            "fail", times, code=code, message=message or _DEFAULT_MESSAGES.get(code, code)
        )

    def http_error_next(
        self, status: int = 500, body: dict[str, Any] | str | None = None, times: int = 1
    ) -> None:
        """Next ``times`` requests (any action) answer HTTP ``status``; a str body is sent raw."""
        self._add_plan("http", times, status=status, body=body)

    def stall_next(self, seconds: float, times: int = 1, then_record: bool = True) -> None:
        """Next ``times`` SendSms answer only after ``seconds``.

        With ``then_record`` the SMS is processed (validated and recorded in ``sent``) as soon as it
        arrives, and the normal answer is delayed: the client times out although the message went
        out. Without it nothing is recorded and the late answer is ``isp.SYSTEM_ERROR``.
        """
        self._add_plan("stall", times, seconds=seconds, then_record=then_record)

    def drop_next(self, times: int = 1) -> None:
        """Next ``times`` requests (any action) are read, then the connection closed unanswered."""
        self._add_plan("drop", times)

    def _add_plan(self, kind: str, times: int, **args: Any) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._plans.append(_Plan(kind, times, args))

    def _take_plan(self, action: str) -> _Plan | None:
        """Consume one use of the highest-precedence plan that applies to ``action``."""
        with self._lock:
            for kind in ("fail", "http", "stall", "drop"):
                if kind in ("fail", "stall") and action not in _SENDING:
                    continue
                for plan in self._plans:
                    if plan.kind == kind:
                        plan.remaining -= 1
                        if plan.remaining <= 0:
                            self._plans.remove(plan)
                        return plan
        return None

    def set_delivery_status(
        self, biz_id_or_phone: str, status: int, err_code: str | None = None
    ) -> None:
        """Make QuerySendDetails report ``status`` (1 waiting, 2 failed, 3 delivered).

        A BizId targets every number of that message; a phone number targets the newest message
        to that number. ``err_code`` defaults to "" / "UNDELIVERED" / "DELIVERED".
        """
        if status not in _DELIVERY_ERR_CODES:
            raise ValueError("status must be 1 (waiting), 2 (failed) or 3 (delivered)")
        err = _DELIVERY_ERR_CODES[status] if err_code is None else err_code
        with self._lock:
            everything = self.sent + self._reports
            by_biz = [m for m in everything if m.biz_id == biz_id_or_phone]
            if by_biz:
                for msg in by_biz:
                    for phone in msg.phones:
                        self._status[(msg.biz_id, phone)] = (status, err)
                return
            phone = normalize_phone(biz_id_or_phone)
            to_phone = [m for m in everything if phone in m.phones]
            if not to_phone:
                raise LookupError(f"no SMS with BizId or phone {biz_id_or_phone}")
            newest = max(to_phone, key=lambda m: m.send_date)
            self._status[(newest.biz_id, phone)] = (status, err)

    def add_delivery_report(
        self,
        phone: str,
        *,
        template_code: str = "SMS_123456789",
        template_param: Mapping[str, str] | None = None,
        sign_name: str = "TestSign",
        send_date: datetime | None = None,
        status: int = 3,
        err_code: str | None = None,
        out_id: str | None = None,
    ) -> SentSms:
        """Add a message only QuerySendDetails knows (e.g. one sent days ago); not in ``sent``."""
        when = (send_date or datetime.now(CHINA_TZ)).astimezone(CHINA_TZ)
        params = dict(template_param or {"code": "000000"})
        msg = SentSms(
            phone_numbers=[phone],
            sign_name=sign_name,
            template_code=template_code,
            template_param=params,
            out_id=out_id,
            biz_id=self._new_biz_id(),
            request_id=_new_request_id(),
            access_key_id="",
            send_date=when,
            content=self._render(sign_name, template_code, params),
        )
        with self._lock:
            self._reports.append(msg)
        self.set_delivery_status(msg.biz_id, status, err_code)
        return msg

    # ----------------------------------------------------------------- pushed reports

    def delivery_report(
        self,
        sms: SentSms,
        *,
        phone: str | None = None,
        success: bool = True,
        err_code: str | None = None,
        err_msg: str | None = None,
        out_id: str | None = None,
        report_delay: float = 3.0,
    ) -> dict[str, Any]:
        """One SmsReport for ``sms`` (to ``phone``, default its first number), in the shape
        Alibaba's HTTP batch push posts: ``success`` a bool, ``sms_size`` a string, times in
        China time, ``biz_id`` SendSms's BizId, ``out_id`` its OutId (override to forge)."""
        sent_at = sms.send_date.astimezone(CHINA_TZ)
        code = err_code or ("DELIVERED" if success else "UNDELIVERED")
        return {
            "phone_number": normalize_phone(phone) if phone else sms.phones[0],
            "send_time": _fmt(sent_at),
            "report_time": _fmt(sent_at + timedelta(seconds=report_delay)),
            "success": success,
            "err_code": code,
            "err_msg": err_msg or ("用户接收成功" if success else "用户接收失败"),
            "sms_size": "1",
            "biz_id": sms.biz_id,
            "out_id": sms.out_id if out_id is None else out_id,
        }

    def push_reports(
        self,
        url: str,
        reports: list[dict[str, Any]] | bytes,
        *,
        timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """POST ``reports`` (a JSON array, or raw bytes) to ``url`` as Alibaba's SmsReport
        push does; returns the HTTP status and the answer (parsed JSON, else text).

        Alibaba counts a push as received only on HTTP 200 with a numeric ``code``; every
        push is kept in ``self.pushes`` as ``(status, answer)``.
        """
        body = (
            reports
            if isinstance(reports, bytes)
            else json.dumps(reports, ensure_ascii=False).encode("utf-8")
        )
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json;charset=utf-8", **(headers or {})},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            answer: Any = json.loads(raw.decode("utf-8"))
        except ValueError:
            answer = raw.decode("utf-8", "replace")
        with self._lock:
            self.pushes.append((status, answer))
        return status, answer

    @staticmethod
    def push_accepted(status: int, answer: Any) -> bool:
        """Whether Alibaba would stop retrying: HTTP 200 and a numeric ``code``."""
        return (
            status == 200
            and isinstance(answer, dict)
            and isinstance(answer.get("code"), int)
            and not isinstance(answer["code"], bool)
        )

    # ----------------------------------------------------------------- request processing

    def _process(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> _Reply:
        """Parse, authenticate, apply failure plans, then dispatch the action."""
        parts = urlsplit(raw_path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        content_type = headers.get("Content-Type", "") or headers.get("content-type", "")
        if body and "application/x-www-form-urlencoded" in content_type.lower():
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        record = RecordedRequest(
            method=method,
            path=raw_path,
            params=params,
            action=params.get("Action"),
            headers=headers,
            body=body,
        )
        with self._lock:
            self.requests.append(record)
        try:
            reply = self._authenticate_and_run(method, parts.path, params, record)
        except _ApiError as err:
            reply = (
                self._business_reply(err.code, err.message)
                if err.status == 200
                else self._error_reply(err.status, err.code, err.message)
            )
        if not reply.drop:
            record.status = reply.status
            record.code = reply.code
            record.request_id = reply.request_id
        return reply

    def _authenticate_and_run(
        self, method: str, path: str, params: dict[str, str], record: RecordedRequest
    ) -> _Reply:
        if path != "/":
            raise _ApiError(
                404,
                "InvalidAction.NotFound",
                "Specified api is not found, please check your url and method.",
            )
        if method not in ("GET", "POST"):
            raise _ApiError(
                400, "UnsupportedHTTPMethod", f"This http method {method} is not supported."
            )
        for name in _COMMON_REQUIRED:
            if not params.get(name):
                raise _missing(name)
        if params["Format"].upper() != "JSON":
            raise _ApiError(
                400, "InvalidParameter.Format", "This test server only speaks Format=JSON."
            )
        if params["Version"] != API_VERSION:
            raise _ApiError(400, "InvalidVersion", "Specified parameter Version is not valid.")
        if params["SignatureMethod"] != "HMAC-SHA1":
            raise _ApiError(
                400, "InvalidSignatureMethod", "Specified signature method is not supported."
            )
        if params["SignatureVersion"] != "1.0":
            raise _ApiError(
                400, "InvalidSignatureVersion", "Specified signature version is not supported."
            )
        try:
            stamp = datetime.strptime(params["Timestamp"], TIMESTAMP_FORMAT).replace(
                tzinfo=timezone.utc
            )
        except ValueError:
            raise _ApiError(
                400,
                "InvalidTimeStamp.Format",
                "Specified time stamp or date value is not well formatted.",
            ) from None
        skew = abs((self.now() - stamp).total_seconds())
        if skew > self.max_clock_skew:
            raise _ApiError(
                400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
            )
        key_id = params["AccessKeyId"]
        secret = self.accounts.get(key_id)
        if secret is None:
            raise _ApiError(
                404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
            )
        expected_sts = string_to_sign(method, params)
        if not hmac.compare_digest(sign(method, params, secret), params["Signature"]):
            # The real message format: the SDK parses it, and it leaks params into logs (trap 7).
            raise _ApiError(
                400,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation. "
                "server string to sign is:" + expected_sts,
            )
        record.signature_ok = True
        with self._lock:
            nonce = (key_id, params["SignatureNonce"])
            if nonce in self._nonces:
                raise _ApiError(
                    400, "SignatureNonceUsed", "Specified signature nonce was used already."
                )
            self._nonces.add(nonce)
        action = params["Action"]
        if action not in _ACTIONS:
            raise _ApiError(
                404,
                "InvalidAction.NotFound",
                "Specified api is not found, please check your url and method.",
            )
        plan = self._take_plan(action)
        if plan is not None:
            return self._apply_plan(plan, params)
        return self._run_action(action, params)

    def _apply_plan(self, plan: _Plan, params: dict[str, str]) -> _Reply:
        args = plan.args
        if plan.kind == "fail":
            return self._business_reply(args["code"], args["message"])
        if plan.kind == "http":
            return self._http_plan_reply(args["status"], args["body"])
        if plan.kind == "drop":
            return _Reply(status=0, body=b"", drop=True)
        # stall
        if args["then_record"]:
            try:
                reply = self._run_action(params.get("Action") or "SendSms", params)
            except _ApiError as err:
                reply = (
                    self._business_reply(err.code, err.message)
                    if err.status == 200
                    else self._error_reply(err.status, err.code, err.message)
                )
        else:
            reply = self._business_reply("isp.SYSTEM_ERROR", _DEFAULT_MESSAGES["isp.SYSTEM_ERROR"])
        reply.delay = float(args["seconds"])
        return reply

    # -- Dybaseapi QueryTokenForMnsQueue (the message queue's temporary credentials) ------
    # The same RPC version (2017-05-25) and signature as Dysmsapi, on dybaseapi.aliyuncs.com;
    # served here so that the real SDK signs it and this server checks it. The test sets
    # ``token_issuer`` (``(message_type, queue_name) -> MessageTokenDTO``, e.g.
    # tests/servers/mns_server.py MnsServer.issue_token); ``token_calls`` records each call.
    token_issuer: Any = None

    def _query_token_for_mns_queue(self, params: dict[str, str]) -> _Reply:
        message_type, queue = params.get("MessageType", ""), params.get("QueueName", "")
        if not message_type:
            raise _missing("MessageType")
        with self._lock:
            self.token_calls = [*getattr(self, "token_calls", []), (message_type, queue)]
        if self.token_issuer is None:
            return self._business_reply("isp.SYSTEM_ERROR", "no token issuer configured")
        dto = self.token_issuer(message_type, queue)
        return self._json_reply(
            200,
            {
                "Code": "OK",
                "Message": "OK",
                "RequestId": _new_request_id(),
                "MessageTokenDTO": dto,
            },
        )

    def _run_action(self, action: str, params: dict[str, str]) -> _Reply:
        if action == "QueryTokenForMnsQueue":
            return self._query_token_for_mns_queue(params)
        if action == "SendSms":
            return self._send_sms(params)
        if action == "SendBatchSms":
            return self._send_batch_sms(params)
        if action == "QuerySmsSign":
            return self._query_sms_sign(params)
        if action == "QuerySmsTemplate":
            return self._query_sms_template(params)
        return self._query_send_details(params)

    # ----------------------------------------------------------------- SendSms

    def _send_sms(self, params: dict[str, str]) -> _Reply:
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not params.get(name):
                raise _missing(name)
        phones = params["PhoneNumbers"].split(",")
        if len(phones) > MAX_PHONE_NUMBERS:
            raise _business("isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制，最多支持1000条")
        self._check_syntax(phones)
        sign_name = params["SignName"]
        self._check_sign(sign_name)
        template_code = params["TemplateCode"]
        required, international = self._check_template(template_code)
        self._check_numbers(phones, international)
        template_param = self._parse_template_param(params.get("TemplateParam", ""))
        self._check_values(required, template_param)
        out_id = self._check_out_id(params)
        extend_code = self._check_extend_code(params.get("SmsUpExtendCode"))
        request_id = _new_request_id()
        msg = SentSms(
            phone_numbers=phones,
            sign_name=sign_name,
            template_code=template_code,
            template_param=template_param,
            out_id=out_id,
            biz_id=self._new_biz_id(),
            request_id=request_id,
            access_key_id=params["AccessKeyId"],
            send_date=datetime.now(CHINA_TZ),
            content=self._render(sign_name, template_code, template_param),
            sms_up_extend_code=extend_code,
        )
        with self._lock:
            self.sent.append(msg)
        return self._json_reply(
            200,
            {"Code": "OK", "Message": "OK", "BizId": msg.biz_id, "RequestId": request_id},
        )

    # SendBatchSms: parallel JSON arrays, one entry per number (help.aliyun.com 66041).
    def _send_batch_sms(self, params: dict[str, str]) -> _Reply:
        for name in ("PhoneNumberJson", "SignNameJson", "TemplateCode"):
            if not params.get(name):
                raise _missing(name)
        phones = self._json_array(params["PhoneNumberJson"], str)
        signs = self._json_array(params["SignNameJson"], str)
        if not phones:
            raise _business("isv.INVALID_PARAMETERS", "PhoneNumberJson 不能为空")
        if len(phones) > MAX_BATCH_NUMBERS:
            raise _business("isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制，最多支持100条")
        if len(signs) != len(phones):
            raise _business("isv.INVALID_PARAMETERS", "签名数量与手机号码数量不一致")
        self._check_syntax(phones)
        for sign_name in dict.fromkeys(signs):
            self._check_sign(sign_name)
        template_code = params["TemplateCode"]
        required, international = self._check_template(template_code)
        raw_values = params.get("TemplateParamJson")
        values = (
            [self._param_object(v) for v in self._json_array(raw_values, dict)]
            if raw_values
            else [{} for _ in phones]
        )
        if len(values) != len(phones):
            raise _business("isv.INVALID_PARAMETERS", "模板变量数量与手机号码数量不一致")
        raw_codes = params.get("SmsUpExtendCodeJson")
        codes: list[str | None] = (
            list(self._json_array(raw_codes, str)) if raw_codes else [None] * len(phones)
        )
        if len(codes) != len(phones):
            raise _business("isv.INVALID_PARAMETERS", "扩展码数量与手机号码数量不一致")
        self._check_numbers(phones, international)
        for entry in values:
            self._check_values(required, entry)
        codes = [self._check_extend_code(c) for c in codes]
        out_id = self._check_out_id(params)
        request_id, biz_id = _new_request_id(), self._new_biz_id()
        now = datetime.now(CHINA_TZ)
        messages = [
            SentSms(
                phone_numbers=[phone],
                sign_name=sign_name,
                template_code=template_code,
                template_param=entry,
                out_id=out_id,
                biz_id=biz_id,
                request_id=request_id,
                access_key_id=params["AccessKeyId"],
                send_date=now,
                content=self._render(sign_name, template_code, entry),
                sms_up_extend_code=code,
            )
            for phone, sign_name, entry, code in zip(phones, signs, values, codes, strict=True)
        ]
        with self._lock:
            self.sent.extend(messages)
        return self._json_reply(
            200, {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id}
        )

    # ----------------------------------------------------------------- shared send checks

    def _check_template(self, template_code: str) -> tuple[list[str], bool]:
        """The template's variables and whether it is international (TemplateType 3)."""
        required = self.templates.get(template_code)
        record = self.template_records.get(template_code)
        if required is None or (record is not None and record.status != STATUS_APPROVED):
            raise _business("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        return required, record is not None and record.type == TYPE_INTERNATIONAL

    @staticmethod
    def _check_syntax(phones: list[str]) -> None:
        """A number neither mainland nor country code + number is illegal whatever the
        template."""
        bad = [p for p in phones if not (_is_valid_phone(p) or _ABROAD_RE.match(p))]
        if bad:
            raise _business("isv.MOBILE_NUMBER_ILLEGAL", f"非法手机号: {bad[0]!r}")

    @staticmethod
    def _check_numbers(phones: list[str], international: bool) -> None:
        """Domestic templates reach mainland numbers only; international ones (HK/MO/TW
        included) take country code + number and refuse a +86/86/0086 number."""
        if international:
            domestic = [p for p in phones if p.lstrip("+").removeprefix("00").startswith("86")]
            if domestic:
                raise _business(
                    "isv.DOMESTIC_NUMBER_NOT_SUPPORTED", "国际/港澳台消息模板不支持发送境内号码"
                )
            bad = [p for p in phones if not _ABROAD_RE.match(p)]
        else:
            bad = [p for p in phones if not _is_valid_phone(p)]
        if bad:
            raise _business("isv.MOBILE_NUMBER_ILLEGAL", f"非法手机号: {bad[0]!r}")
        if not international and any(not _MAINLAND_RE.match(p) for p in phones):
            raise _business(
                "isv.SMS_TEMPLATE_ILLEGAL",
                "国内短信模板不能发送国际/港澳台号码，请使用国际/港澳台模板",
            )

    def _check_sign(self, sign_name: str) -> None:
        record = self.signs.get(sign_name)
        if sign_name not in self.sign_names or (
            record is not None and record.status != STATUS_APPROVED
        ):
            raise _business("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")

    @staticmethod
    def _check_values(required: list[str], values: Mapping[str, str]) -> None:
        missing = [name for name in required if name not in values]
        if missing:
            raise _business(
                "isv.TEMPLATE_MISSING_PARAMETERS", f"模版缺少变量: {', '.join(missing)}"
            )
        too_long = [k for k, v in values.items() if len(v) > MAX_TEMPLATE_VAR]
        if too_long:
            raise _business("isv.PARAM_LENGTH_LIMIT", f"参数超出长度限制: {too_long[0]}")

    @staticmethod
    def _check_out_id(params: Mapping[str, str]) -> str | None:
        out_id = params.get("OutId")
        if out_id is not None and len(out_id) > MAX_OUT_ID:
            raise _business("isv.INVALID_PARAMETERS", "OutId 超过256个字符")
        return out_id

    @staticmethod
    def _check_extend_code(code: str | None) -> str | None:
        """SmsUpExtendCode: ASCII digits, at most 7; empty means none."""
        if not code:
            return None
        if not (code.isascii() and code.isdigit()) or len(code) > MAX_EXTEND_CODE:
            raise _business("isv.INVALID_PARAMETERS", "上行短信扩展码不合法")
        return code

    @staticmethod
    def _json_array(raw: str | None, kind: type) -> list[Any]:
        try:
            value = json.loads(raw or "")
        except ValueError:
            raise _business("isv.INVALID_JSON_PARAM", "JSON参数不合法") from None
        if not isinstance(value, list) or not all(isinstance(v, kind) for v in value):
            raise _business("isv.INVALID_JSON_PARAM", "JSON参数不合法")
        return value

    @staticmethod
    def _param_object(value: dict[str, Any]) -> dict[str, str]:
        if not all(isinstance(v, str) for v in value.values()):
            raise _business("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        return value

    @staticmethod
    def _parse_template_param(raw: str) -> dict[str, str]:
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except ValueError:
            raise _business("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值") from None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise _business("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        return value

    def _new_biz_id(self) -> str:
        with self._lock:
            seq = next(self._seq)
        return f"{random.randint(100_000_000_000, 999_999_999_999)}{seq:06d}^0"

    def _render(self, sign_name: str, template_code: str, values: Mapping[str, str]) -> str:
        record = self.template_records.get(template_code)
        text = record.content if record is not None else _TEMPLATE_TEXTS.get(template_code)
        if text is None:
            names = self.templates.get(template_code) or list(values)
            text = "，".join(f"{n}：${{{n}}}" for n in names)
        for name, value in values.items():
            text = text.replace("${" + name + "}", value)
        return f"【{sign_name}】{text}"

    # ----------------------------------------------------------------- QuerySmsSign / Template

    def _query_sms_sign(self, params: dict[str, str]) -> _Reply:
        name = params.get("SignName")
        if not name:
            raise _missing("SignName")
        with self._lock:
            record = self.signs.get(name) if name in self.sign_names else None
            if record is None and name in self.sign_names:
                record = SignRecord(name)  # added to sign_names directly: approved
        if record is None:
            raise _business("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        return self._json_reply(
            200,
            {
                "RequestId": _new_request_id(),
                "Code": "OK",
                "Message": "OK",
                "SignName": record.name,
                "SignStatus": record.status,
                "Reason": record.reason,
                "CreateDate": record.create_date,
            },
        )

    def _query_sms_template(self, params: dict[str, str]) -> _Reply:
        code = params.get("TemplateCode")
        if not code:
            raise _missing("TemplateCode")
        with self._lock:
            record = self.template_records.get(code) if code in self.templates else None
            if record is None and code in self.templates:  # added to templates directly
                text = "，".join(f"{n}：${{{n}}}" for n in self.templates[code])
                record = TemplateRecord(code, text, name=code)
        if record is None:
            raise _business("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        return self._json_reply(
            200,
            {
                "RequestId": _new_request_id(),
                "Code": "OK",
                "Message": "OK",
                "TemplateCode": record.code,
                "TemplateName": record.name,
                "TemplateContent": record.content,
                "TemplateStatus": record.status,
                "TemplateType": record.type,
                "Reason": record.reason,
                "CreateDate": record.create_date,
            },
        )

    # ----------------------------------------------------------------- QuerySendDetails

    def _query_send_details(self, params: dict[str, str]) -> _Reply:
        for name in ("PhoneNumber", "SendDate", "PageSize", "CurrentPage"):
            if not params.get(name):
                raise _missing(name)
        invalid = _business("isv.INVALID_PARAMETERS", "参数异常")
        phone = params["PhoneNumber"]
        if "," in phone or not _is_valid_phone(phone):
            raise invalid
        try:
            day = datetime.strptime(params["SendDate"], "%Y%m%d").date()
            page_size = int(params["PageSize"])
            page = int(params["CurrentPage"])
        except ValueError:
            raise invalid from None
        if len(params["SendDate"]) != 8 or not 1 <= page_size <= MAX_PAGE_SIZE or page < 1:
            raise invalid
        biz_id = params.get("BizId") or None
        wanted = normalize_phone(phone)
        with self._lock:
            matches = [
                m
                for m in self.sent + self._reports
                if wanted in m.phones
                and m.send_date.astimezone(CHINA_TZ).date() == day
                and (biz_id is None or m.biz_id == biz_id)
            ]
            matches.sort(key=lambda m: m.send_date, reverse=True)
            window = matches[(page - 1) * page_size : page * page_size]
            dtos = [self._detail(m, wanted) for m in window]
        return self._json_reply(
            200,
            {
                "Code": "OK",
                "Message": "OK",
                "RequestId": _new_request_id(),
                "TotalCount": str(len(matches)),
                "SmsSendDetailDTOs": {"SmsSendDetailDTO": dtos},
            },
        )

    def _detail(self, msg: SentSms, phone: str) -> dict[str, Any]:
        status, err = self._status.get((msg.biz_id, phone), (3, "DELIVERED"))
        sent_at = msg.send_date.astimezone(CHINA_TZ)
        received = "" if status == 1 else _fmt(sent_at + timedelta(seconds=3))
        dto: dict[str, Any] = {
            "PhoneNum": phone,
            "SendStatus": status,
            "ErrCode": err,
            "TemplateCode": msg.template_code,
            "Content": msg.content,
            "SendDate": _fmt(sent_at),
            "ReceiveDate": received,
        }
        if msg.out_id is not None:
            dto["OutId"] = msg.out_id
        return dto

    # ----------------------------------------------------------------- replies

    @staticmethod
    def _json_reply(status: int, payload: dict[str, Any]) -> _Reply:
        return _Reply(
            status=status,
            body=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
            request_id=payload.get("RequestId"),
            code=payload.get("Code"),
        )

    def _business_reply(self, code: str, message: str) -> _Reply:
        return self._json_reply(
            200, {"Code": code, "Message": message, "RequestId": _new_request_id()}
        )

    def _error_reply(self, status: int, code: str, message: str) -> _Reply:
        return self._json_reply(
            status,
            {
                "RequestId": _new_request_id(),
                "HostId": HOST_ID,
                "Code": code,
                "Message": message,
                "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&product=Dysmsapi",
            },
        )

    def _http_plan_reply(self, status: int, body: dict[str, Any] | str | None) -> _Reply:
        if isinstance(body, str):
            return _Reply(status=status, body=body.encode("utf-8"), content_type="text/plain")
        if body is None:
            code, message = _DEFAULT_HTTP_ERRORS.get(
                status, ("InternalError" if status >= 500 else "InvalidParameter", f"HTTP {status}")
            )
            return self._error_reply(status, code, message)
        return self._json_reply(status, body)


def _fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")
