"""A loopback fake of Tencent Cloud SMS (API 3.0, version 2021-01-11).

Why: the Tencent sender must be tested against the *real* SDK (tencentcloud-sdk-python-sms:
its TC3 signing, its exceptions, its logging), not against mocks of it. This module serves
the API over plain HTTP on 127.0.0.1 closely enough that ``SmsClient`` with
``HttpProfile(protocol="http", endpoint=server.endpoint)`` talks to it, **checks the
TC3-HMAC-SHA256 signature of every request** like the real gateway (canonical request over
the signed headers and the body's SHA-256, ``X-TC-Timestamp`` within ``max_clock_skew``
seconds, credential scope ``<UTC date>/sms/tc3_request``, ``content-type`` and ``host``
signed), and answers ``SendSms``, ``DescribeSmsSignList`` and ``DescribeSmsTemplateList`` in
Tencent's JSON shapes (``{"Response": {..., "RequestId"}}``; failures as HTTP 200 with
``Response.Error``, per-number outcomes in ``SendStatusSet``).

Usage::

    from tencentcloud.common.credential import Credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.sms.v20210111 import models, sms_client

    with TencentServer() as server:
        profile = ClientProfile(httpProfile=HttpProfile(protocol="http",
                                                        endpoint=server.endpoint))
        client = sms_client.SmsClient(Credential(SECRET_ID, SECRET_KEY), "ap-guangzhou",
                                      profile)
        req = models.SendSmsRequest()
        req.PhoneNumberSet = ["+8613800138000"]; req.SmsSdkAppId = SDK_APP_ID
        req.SignName = "TestSign"; req.TemplateId = "1001"; req.TemplateParamSet = ["123456"]
        client.SendSms(req)
        assert server.last_code("13800138000") == "123456"

Fault injection (the API a chaos benchmark and failover tests drive; each plan is consumed
by the next matching request(s), ``times`` of them, in the order below):

- ``fail_next(code, message=None, times=1, level=None)``: the next SendSms answers ``code``.
  ``level="number"`` puts it in the number's ``SendStatus`` (HTTP 200, the request
  succeeded, that number was refused); ``level="request"`` answers ``Response.Error``
  (nothing processed). ``None`` picks what Tencent does for the code: per number for
  ``LimitExceeded.*`` / ``FailedOperation.*`` / ``InvalidParameterValue.*`` /
  ``UnsupportedOperation.*``, request-level for everything else (``AuthFailure.*``,
  ``InternalError.*``, ``RequestLimitExceeded``, ``UnauthorizedOperation.*``...). Nothing is
  recorded as sent.
- ``http_error_next(status=502, body=None, times=1)``: the next request (any action) answers
  a non-200 HTTP status (a gateway failure); nothing is recorded.
- ``stall_next(seconds, times=1, then_record=True)``: the next SendSms answers only after
  ``seconds``; with ``then_record`` the SMS is recorded first (the client times out although
  the message went out), else nothing is recorded.
- ``drop_next(times=1, after_read=True, then_record=False)``: the next request (any action)
  is reset (TCP RST, no answer). ``after_read``: the whole request was read first (and with
  ``then_record`` a SendSms is recorded: the message went out, the answer was lost);
  otherwise the connection is reset before the body is read.
- ``clock_offset``: seconds this server's clock is ahead (timestamps are judged by it).
- ``set_sign(name, status)`` / ``set_template(id, content, status, international)`` with
  Tencent's status codes (signs: 0 approved, 1 reviewing, -1 rejected; templates: 0 approved,
  1 reviewing, 2 approved but not yet effective, -1 rejected); ``remove_sign`` /
  ``remove_template``. SendSms refuses an unapproved sign or template per number
  (``FailedOperation.SignatureIncorrectOrUnapproved`` /
  ``FailedOperation.TemplateIncorrectOrUnapproved``). ``reset()`` restores the defaults.

Choices where the real service is not pinned down: mainland numbers (``+86``) need an
approved domestic sign; numbers outside the mainland need an international template
(``UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone``, and the reverse
``...GlobalTemplateToChineseMainlandPhone``); the parameter count must equal the template's
``{n}`` count (``FailedOperation.TemplateParamSetNotMatchApprovedTemplate``); a request
mixing mainland and other numbers answers
``UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber``.
A number that is not ``+`` and 8-15 digits (mainland: ``+861`` and 10 more digits) answers
``InvalidParameterValue.IncorrectPhoneNumber`` in its status.

Status callbacks: ``report(sms, success=True, errmsg=None, ext=...)`` builds one callback item
of a message it "sent" (``ext`` is the SessionContext unless overridden), and
``push_reports(url, [...])`` POSTs a JSON array of them as Tencent does; ``push_accepted``
judges the answer as Tencent does (HTTP 200 and ``result == 0``).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import socket
import struct
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "API_VERSION",
    "DEFAULT_ACCOUNTS",
    "SDK_APP_ID",
    "SECRET_ID",
    "SECRET_KEY",
    "RecordedRequest",
    "SentSms",
    "TencentServer",
    "tc3_signature",
]

API_VERSION = "2021-01-11"
SERVICE = "sms"
SECRET_ID = "AKIDtest0000000000000000000000000000"
SECRET_KEY = "test-tencent-secret-key"
SDK_APP_ID = "1400000001"
DEFAULT_ACCOUNTS: dict[str, str] = {SECRET_ID: SECRET_KEY}
# Templates: id -> (content, international). {n} are the positional parameters.
DEFAULT_TEMPLATES: dict[str, tuple[str, int]] = {
    "1001": ("您的验证码为{1}，请勿泄露于他人。", 0),
    "1002": ("您的验证码为{1}，{2}分钟内有效。", 0),
    "1003": ("您正在注册，验证码为{1}。", 0),
    "2001": ("Your verification code is {1}.", 1),
}
DEFAULT_SIGNS: dict[str, int] = {"TestSign": 0}  # name -> StatusCode
_PLACEHOLDER = re.compile(r"\{(\d+)\}")
_AUTH = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>[^/]+)/(?P<service>[^/]+)/"
    r"(?P<term>[^,]+), SignedHeaders=(?P<headers>[^,]+), Signature=(?P<sig>[0-9a-f]+)"
)
_NUMBER_LEVEL = (
    "LimitExceeded.",
    "FailedOperation.",
    "InvalidParameterValue.",
    "UnsupportedOperation.",
)


def tc3_signature(
    secret_key: str,
    *,
    date: str,
    timestamp: str,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: str,
    body: bytes,
    service: str = SERVICE,
) -> str:
    """Tencent's TC3-HMAC-SHA256 signature, computed independently of the SDK."""
    names = signed_headers.split(";")
    lowered = {k.lower(): v for k, v in headers.items()}
    canonical_headers = "".join(f"{n}:{lowered.get(n, '').strip().lower()}\n" for n in names)
    canonical_request = "\n".join(
        [
            method,
            path,
            query,
            canonical_headers,
            signed_headers,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            timestamp,
            scope,
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        ]
    )

    def _hmac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()

    secret_date = _hmac(("TC3" + secret_key).encode("utf-8"), date)
    secret_service = _hmac(secret_date, service)
    secret_signing = _hmac(secret_service, "tc3_request")
    return hmac.new(secret_signing, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass
class RecordedRequest:
    """One request as received (whatever its fate)."""

    action: str | None
    headers: dict[str, str]
    body: bytes
    params: dict[str, Any] = field(default_factory=dict)
    secret_id: str | None = None
    signature_ok: bool = False
    error: str | None = None  # the Error.Code answered, if any


BEIJING = timezone(timedelta(hours=8))  # Tencent writes its callback times in Beijing time


@dataclass
class SentSms:
    """One accepted message to one number."""

    phone: str
    template_id: str
    params: list[str]
    sign_name: str | None
    session_context: str
    serial_no: str
    request_id: str
    sent_at: float


@dataclass
class _Plan:
    kind: str
    remaining: int
    args: dict[str, Any]


class _Reply:
    def __init__(self, status: int = 200, body: Any = None, *, delay: float = 0.0) -> None:
        self.status = status
        self.body = body
        self.delay = delay
        self.reset = False


class _Error(Exception):
    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.message = message or code


def normalize_phone(phone: str) -> str:
    """E.164 for a number written with or without +86 (mainland: 11 digits)."""
    digits = phone.strip()
    if digits.startswith("+"):
        return digits
    if digits.startswith("0086"):
        return "+" + digits[2:]
    if len(digits) == 11 and digits.startswith("1"):
        return "+86" + digits
    return "+" + digits


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: TencentServer, address: tuple[str, int]) -> None:
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
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def _reset(self) -> None:
        """Close with a TCP RST (no FIN): what a crashed gateway or a middlebox does."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _serve(self) -> None:
        owner = self.server.owner
        plan = owner._take_plan("drop", None)
        if plan is not None and not plan.args["after_read"]:
            self._reset()
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        try:
            reply = owner._process(self.command, self.path, dict(self.headers.items()), body)
        except Exception:
            owner.errors.append(traceback.format_exc())
            reply = _Reply(500, {"error": "test server bug; see server.errors"})
        if plan is not None:
            if plan.args["then_record"]:
                owner._commit_pending()
            owner._drop_pending()
            self._reset()
            return
        owner._commit_pending()
        if reply.delay > 0 and owner._stopping.wait(reply.delay):
            self._reset()
            return
        raw = (
            reply.body
            if isinstance(reply.body, bytes)
            else json.dumps(reply.body, ensure_ascii=False).encode("utf-8")
        )
        try:
            self.send_response(reply.status)
            # Exactly "application/json": the SDK looks for Response.Error only then.
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _serve


class TencentServer:
    """Fake ``sms.tencentcloudapi.com`` on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        accounts: Mapping[str, str] | None = None,
        *,
        sdk_app_ids: tuple[str, ...] = (SDK_APP_ID,),
        host: str = "127.0.0.1",
        port: int = 0,
        max_clock_skew: float = 300.0,
    ) -> None:
        self.accounts = dict(DEFAULT_ACCOUNTS if accounts is None else accounts)
        self.sdk_app_ids = set(sdk_app_ids)
        self.host = host
        self._requested_port = port
        self.max_clock_skew = max_clock_skew
        self.clock_offset = 0.0
        self.signs: dict[str, dict[str, Any]] = {}
        self.templates: dict[str, dict[str, Any]] = {}
        self.sent: list[SentSms] = []
        self.requests: list[RecordedRequest] = []
        self.pushes: list[tuple[int, Any]] = []
        self.errors: list[str] = []
        self._pending: dict[int, list[SentSms]] = {}
        self._plans: deque[_Plan] = deque()
        self._lock = threading.RLock()
        self._seq = itertools.count(1)
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> TencentServer:
        if self._httpd is not None:
            raise RuntimeError("TencentServer already started")
        self._stopping = threading.Event()
        self._httpd = _HTTPServer(self, (self.host, self._requested_port))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"TencentServer:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> TencentServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("TencentServer not started")
        return int(self._httpd.server_address[1])

    @property
    def endpoint(self) -> str:
        """``host:port``: what ``HttpProfile(endpoint=...)`` / SMSCODE_TENCENT_ENDPOINT take."""
        return f"{self.host}:{self.port}"

    # ------------------------------------------------------------------ the account

    def reset(self) -> None:
        """Forget messages, requests, plans and pushes; restore default signs, templates
        and the clock."""
        with self._lock:
            self.signs = {}
            for name, status in DEFAULT_SIGNS.items():
                self.set_sign(name, status)
            self.templates = {}
            for template_id, (content, international) in DEFAULT_TEMPLATES.items():
                self.set_template(template_id, content, international=international)
            self.sent.clear()
            self.requests.clear()
            self.pushes.clear()
            self.errors.clear()
            self._plans.clear()
            self._pending.clear()
            self.clock_offset = 0.0

    def set_sign(
        self, name: str, status: int = 0, *, international: int = 0, reply: str = ""
    ) -> None:
        """Add or change a signature (StatusCode 0 approved, 1 reviewing, -1 rejected)."""
        with self._lock:
            sign_id = self.signs.get(name, {}).get("SignId") or next(self._seq)
            self.signs[name] = {
                "SignId": sign_id,
                "International": international,
                "StatusCode": status,
                "ReviewReply": reply,
                "SignName": name,
                "CreateTime": int(time.time()),
            }

    def remove_sign(self, name: str) -> None:
        with self._lock:
            self.signs.pop(name, None)

    def set_template(
        self,
        template_id: str,
        content: str = "您的验证码为{1}。",
        status: int = 0,
        *,
        international: int = 0,
        reply: str = "",
    ) -> None:
        """Add or change a template (StatusCode 0 approved, 1 reviewing, 2 approved but
        not yet effective, -1 rejected; ``international`` 0 domestic, 1 international)."""
        with self._lock:
            self.templates[str(template_id)] = {
                "TemplateId": int(template_id),
                "International": international,
                "StatusCode": status,
                "ReviewReply": reply,
                "TemplateName": f"template {template_id}",
                "CreateTime": int(time.time()),
                "TemplateContent": content,
            }

    def remove_template(self, template_id: str) -> None:
        with self._lock:
            self.templates.pop(str(template_id), None)

    # ------------------------------------------------------------------ what was sent

    def messages_to(self, phone: str) -> list[SentSms]:
        """Accepted messages to ``phone`` (any prefix form), oldest first."""
        wanted = normalize_phone(phone)
        with self._lock:
            return [m for m in self.sent if m.phone == wanted]

    def last_sms(self, phone: str) -> SentSms:
        messages = self.messages_to(phone)
        if not messages:
            raise LookupError(f"no SMS sent to {phone}")
        return messages[-1]

    def last_code(self, phone: str) -> str:
        """``{1}`` (the first template parameter) of the newest message to ``phone``."""
        sms = self.last_sms(phone)
        if not sms.params:
            raise LookupError(f"newest SMS to {phone} has no template parameter")
        return sms.params[0]

    def action_requests(self, action: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.action == action]

    # ------------------------------------------------------------------ fault plans

    def fail_next(
        self, code: str, message: str | None = None, times: int = 1, level: str | None = None
    ) -> None:
        """The next ``times`` SendSms answer ``code`` per number or per request (see the
        module docstring); nothing is sent."""
        if level is None:
            level = "number" if code.startswith(_NUMBER_LEVEL) else "request"
        if level not in ("number", "request"):
            raise ValueError("level is 'number', 'request' or None")
        self._add_plan("fail", times, code=code, message=message or code, level=level)

    def http_error_next(self, status: int = 502, body: Any = None, times: int = 1) -> None:
        """The next ``times`` requests (any action) answer HTTP ``status``."""
        self._add_plan("http", times, status=status, body=body)

    def stall_next(self, seconds: float, times: int = 1, then_record: bool = True) -> None:
        """The next ``times`` SendSms answer after ``seconds`` (recorded first if
        ``then_record``)."""
        self._add_plan("stall", times, seconds=seconds, then_record=then_record)

    def drop_next(
        self, times: int = 1, *, after_read: bool = True, then_record: bool = False
    ) -> None:
        """The next ``times`` requests (any action) are reset without an answer."""
        self._add_plan("drop", times, after_read=after_read, then_record=then_record)

    def _add_plan(self, kind: str, times: int, **args: Any) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._plans.append(_Plan(kind, times, args))

    def _take_plan(self, kind: str, action: str | None) -> _Plan | None:
        with self._lock:
            for plan in self._plans:
                if plan.kind == kind:
                    plan.remaining -= 1
                    if plan.remaining <= 0:
                        self._plans.remove(plan)
                    return plan
        return None

    # ------------------------------------------------------------------ status callbacks

    def report(
        self,
        sms: SentSms,
        *,
        success: bool = True,
        errmsg: str | None = None,
        ext: str | None = None,
        with_ext: bool = True,
        received_after: float | None = None,
    ) -> dict[str, Any]:
        """One status-callback item for ``sms`` (Tencent's field names); the handset's
        receive time is now, or ``received_after`` seconds after the send, in Beijing time
        (UTC+8) as Tencent writes it."""
        received = (
            datetime.now(timezone.utc)
            if received_after is None
            else datetime.fromtimestamp(sms.sent_at + received_after, timezone.utc)
        )
        digits = sms.phone.lstrip("+")
        nationcode, mobile = ("86", digits[2:]) if digits.startswith("86") else ("", digits)
        item: dict[str, Any] = {
            "user_receive_time": received.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
            "nationcode": nationcode,
            "mobile": mobile,
            "report_status": "SUCCESS" if success else "FAIL",
            "errmsg": errmsg or ("DELIVRD" if success else "MK:0001"),
            "description": "用户短信送达成功" if success else "用户短信未送达",
            "sid": sms.serial_no,
        }
        if with_ext:
            item["ext"] = sms.session_context if ext is None else ext
        return item

    def push_reports(
        self, url: str, reports: list[dict[str, Any]] | bytes, *, timeout: float = 5.0
    ) -> tuple[int, Any]:
        """POST ``reports`` (a JSON array, or raw bytes) to ``url`` as Tencent's status
        callback does; returns the HTTP status and the answer (JSON if it parses)."""
        body = (
            reports
            if isinstance(reports, bytes)
            else json.dumps(reports, ensure_ascii=False).encode("utf-8")
        )
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
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
        """Whether Tencent would stop retrying: HTTP 200 and ``result == 0``."""
        return status == 200 and isinstance(answer, dict) and answer.get("result") == 0

    # ------------------------------------------------------------------ processing

    def now(self) -> float:
        return time.time() + self.clock_offset

    def _commit_pending(self) -> None:
        with self._lock:
            self.sent.extend(self._pending.pop(threading.get_ident(), []))

    def _drop_pending(self) -> None:
        with self._lock:
            self._pending.pop(threading.get_ident(), None)

    def _answer(self, payload: dict[str, Any], request_id: str) -> dict[str, Any]:
        return {"Response": {**payload, "RequestId": request_id}}

    def _process(self, method: str, path: str, headers: dict[str, str], body: bytes) -> _Reply:
        lowered = {k.lower(): v for k, v in headers.items()}
        action = lowered.get("x-tc-action")
        record = RecordedRequest(action=action, headers=dict(headers), body=body)
        with self._lock:
            self.requests.append(record)
        request_id = str(uuid.uuid4())
        plan = self._take_plan("http", action)
        if plan is not None:
            body_out = plan.args["body"]
            return _Reply(plan.args["status"], body_out if body_out is not None else b"Bad Gateway")
        try:
            if method != "POST" or path.split("?")[0] != "/":
                raise _Error("InvalidAction", "only POST / is served")
            self._authenticate(record, method, lowered, body)
            if lowered.get("x-tc-version") != API_VERSION:
                raise _Error("NoSuchVersion", "the version does not exist")
            try:
                params = json.loads(body.decode("utf-8") or "{}")
            except ValueError:
                raise _Error("FailedOperation.JsonParseFail", "body is not JSON") from None
            if not isinstance(params, dict):
                raise _Error("FailedOperation.JsonParseFail", "body is not a JSON object")
            record.params = params
            handler = {
                "SendSms": self._send_sms,
                "DescribeSmsSignList": self._describe_signs,
                "DescribeSmsTemplateList": self._describe_templates,
            }.get(action or "")
            if handler is None:
                raise _Error("InvalidAction", f"action {action} does not exist")
            payload, delay = handler(params, request_id)
        except _Error as exc:
            record.error = exc.code
            return _Reply(
                200,
                self._answer({"Error": {"Code": exc.code, "Message": exc.message}}, request_id),
            )
        return _Reply(200, self._answer(payload, request_id), delay=delay)

    def _authenticate(
        self, record: RecordedRequest, method: str, headers: dict[str, str], body: bytes
    ) -> None:
        """The gateway's TC3-HMAC-SHA256 check (raises AuthFailure.*)."""
        auth = headers.get("authorization", "")
        match = _AUTH.fullmatch(auth.strip())
        if match is None:
            raise _Error("AuthFailure.InvalidAuthorization", "Authorization is malformed")
        secret_id = match["id"]
        record.secret_id = secret_id
        secret_key = self.accounts.get(secret_id)
        if secret_key is None:
            raise _Error("AuthFailure.SecretIdNotFound", "The SecretId is not found")
        timestamp = headers.get("x-tc-timestamp", "")
        if not timestamp.isdigit():
            raise _Error("AuthFailure.InvalidAuthorization", "X-TC-Timestamp is missing")
        if abs(self.now() - int(timestamp)) > self.max_clock_skew:
            raise _Error("AuthFailure.SignatureExpire", "The signature expired")
        date = datetime.fromtimestamp(int(timestamp), timezone.utc).strftime("%Y-%m-%d")
        signed = match["headers"].split(";")
        if (
            match["date"] != date
            or match["service"] != SERVICE
            or match["term"] != "tc3_request"
            or "content-type" not in signed
            or "host" not in signed
        ):
            raise _Error("AuthFailure.SignatureFailure", "The credential scope is wrong")
        expected = tc3_signature(
            secret_key,
            date=date,
            timestamp=timestamp,
            method=method,
            path="/",
            query="",
            headers=headers,
            signed_headers=match["headers"],
            body=body,
        )
        if not hmac.compare_digest(expected, match["sig"]):
            raise _Error("AuthFailure.SignatureFailure", "The signature does not match")
        record.signature_ok = True

    def _send_sms(self, params: dict[str, Any], request_id: str) -> tuple[dict[str, Any], float]:
        phones = params.get("PhoneNumberSet")
        if not params.get("SmsSdkAppId") or not params.get("TemplateId"):
            raise _Error("MissingParameter", "SmsSdkAppId and TemplateId are required")
        if not isinstance(phones, list) or not phones:
            raise _Error("MissingParameter.EmptyPhoneNumberSet", "PhoneNumberSet is empty")
        if len(phones) > 200:
            raise _Error("LimitExceeded.PhoneNumberCountLimit", "at most 200 numbers")
        if str(params["SmsSdkAppId"]) not in self.sdk_app_ids:
            raise _Error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId does not exist")
        normalized = [normalize_phone(str(p)) for p in phones]
        mainland = {p.startswith("+86") for p in normalized}
        if len(mainland) > 1:
            raise _Error(
                "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
                "mainland and other numbers in one request",
            )
        plan = self._take_plan("fail", "SendSms")
        if plan is not None and plan.args["level"] == "request":
            raise _Error(plan.args["code"], plan.args["message"])
        stall = self._take_plan("stall", "SendSms")
        values = [str(v) for v in params.get("TemplateParamSet") or []]
        context = str(params.get("SessionContext") or "")
        statuses = []
        pending: list[SentSms] = []
        for phone in normalized:
            serial = f"{next(self._seq)}:{uuid.uuid4().hex[:24]}"
            if plan is not None:
                code, message = plan.args["code"], plan.args["message"]
            else:
                code, message = self._check_number(phone, params, values)
            statuses.append(
                {
                    "SerialNo": serial if code == "Ok" else "",
                    "PhoneNumber": phone,
                    "Fee": 1 if code == "Ok" else 0,
                    "SessionContext": context,
                    "Code": code,
                    "Message": message,
                    "IsoCode": "CN" if phone.startswith("+86") else "DEF",
                }
            )
            if code == "Ok":
                pending.append(
                    SentSms(
                        phone=phone,
                        template_id=str(params["TemplateId"]),
                        params=values,
                        sign_name=params.get("SignName"),
                        session_context=context,
                        serial_no=serial,
                        request_id=request_id,
                        sent_at=time.time(),
                    )
                )
        delay = 0.0
        if stall is not None:
            delay = float(stall.args["seconds"])
            if not stall.args["then_record"]:
                pending = []
        with self._lock:
            self._pending[threading.get_ident()] = pending
        return {"SendStatusSet": statuses}, delay

    def _check_number(
        self, phone: str, params: dict[str, Any], values: list[str]
    ) -> tuple[str, str]:
        mainland = phone.startswith("+86")
        if not re.fullmatch(r"\+86 ?1[0-9]{10}" if mainland else r"\+[1-9][0-9]{7,14}", phone):
            return "InvalidParameterValue.IncorrectPhoneNumber", "incorrect phone number"
        template = self.templates.get(str(params["TemplateId"]))
        if template is None or template["StatusCode"] != 0:
            return "FailedOperation.TemplateIncorrectOrUnapproved", "template not approved"
        if mainland:
            sign = self.signs.get(str(params.get("SignName") or ""))
            if sign is None or sign["StatusCode"] != 0:
                return "FailedOperation.SignatureIncorrectOrUnapproved", "sign not approved"
            if template["International"] == 1:
                return (
                    "UnsupportedOperation.GlobalTemplateToChineseMainlandPhone",
                    "international template to a mainland number",
                )
        elif template["International"] == 0:
            return (
                "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone",
                "domestic template to a number outside the mainland",
            )
        wanted = len(set(_PLACEHOLDER.findall(template["TemplateContent"])))
        if len(values) != wanted:
            return (
                "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
                "the parameters do not match the template",
            )
        return "Ok", "send success"

    def _describe_signs(
        self, params: dict[str, Any], request_id: str
    ) -> tuple[dict[str, Any], float]:
        international = int(params.get("International") or 0)
        ids = params.get("SignIdSet") or []
        limit = int(params.get("Limit") or 10)
        offset = int(params.get("Offset") or 0)
        with self._lock:
            signs = [s for s in self.signs.values() if s["International"] == international]
        if ids:
            signs = [s for s in signs if s["SignId"] in ids]
        else:
            signs = signs[offset : offset + min(limit, 100)]
        return {"DescribeSignListStatusSet": signs}, 0.0

    def _describe_templates(
        self, params: dict[str, Any], request_id: str
    ) -> tuple[dict[str, Any], float]:
        international = int(params.get("International") or 0)
        ids = [str(i) for i in params.get("TemplateIdSet") or []]
        with self._lock:
            found = [
                t
                for t in self.templates.values()
                if t["International"] == international and (not ids or str(t["TemplateId"]) in ids)
            ]
        return {"DescribeTemplateStatusSet": found}, 0.0
