"""A loopback fake of Alibaba Cloud PNVS 号码认证服务 (Dypnsapi, RPC version 2017-05-25).

Why: the ``pnvs`` sender must be tested through the *real* ``aliyunsdkcore`` client (its
signing, exceptions and logging traps) as the ``aliyun`` sender is. This server speaks the
same RPC protocol as :class:`~tests.servers.dysmsapi_server.DysmsapiServer` and reuses its
signature functions and HTTP plumbing (imported, not copied): every request's HMAC-SHA1
signature, timestamp window and nonce are checked like the real gateway. It answers
``SendSmsVerifyCode`` and ``CheckSmsVerifyCode`` in Dypnsapi's JSON shape, taken from the
official SDK models (alibabacloud_dypnsapi20170525 ``SendSmsVerifyCodeResponseBody``)::

    {"AccessDeniedDetail": "", "Code": "OK", "Message": "成功", "Success": true,
     "Model": {"VerifyCode": "...", "RequestId": "...", "OutId": "...", "BizId": "..."}}

(``VerifyCode`` only with ``ReturnVerifyCode=true``; no top-level ``RequestId``.)
CheckSmsVerifyCode answers ``Model{"VerifyResult": "PASS"|"UNKNOWN", "OutId"}``.

Usage (another vendor's failover tests use the same fault API)::

    with DypnsapiServer() as server:
        config["SMSCODE_PNVS_ENDPOINT"] = server.endpoint      # 127.0.0.1:port
        config["SMSCODE_PNVS_PROTOCOL"] = "http"
        ...  # send through the app
        server.last_code("+8613800138000")                     # the code the SMS carried
        server.fail_next("biz.FREQUENCY")                       # next send refused (HTTP 200)
        server.http_error_next(503)                             # next call: HTTP 503
        server.stall_next(3.0)                                  # next send answers late
        server.drop_next()                                      # next call: connection closed

Fault API (the same names and meanings as DysmsapiServer's):

- ``fail_next(code, message=None, times=1)``: the next ``times`` sends (SendSmsVerifyCode)
  answer HTTP 200 with business error ``code``; nothing is sent. Without a message, the
  real one for known codes.
- ``http_error_next(status=500, body=None, times=1)``: the next requests, any action,
  answer HTTP ``status`` (the gateway's error body, or ``body``; a str is sent raw).
- ``stall_next(seconds, times=1, then_record=True)``: the next sends answer only after
  ``seconds``; with ``then_record`` the SMS is recorded at once (the client times out
  although it went out: an unconfirmed delivery), else the late answer is isp.SYSTEM_ERROR.
- ``drop_next(times=1)``: the next requests are read, then the connection closed unanswered.
- ``reset()``: forget sends, requests, plans, nonces and frequency history.

Choices where PNVS is not pinned down (documented for the tests relying on them):

- Accounts: ``{"test-key-id": "test-key-secret"}``. System signature ``速通互联验证码`` and
  templates ``100001``-``100003`` (the docs' examples), each with ``${code}`` and ``${min}``.
  An unknown sign answers ``isv.SMS_SIGN_ILLEGAL``, an unknown template
  ``isv.SMS_TEMPLATE_ILLEGAL``; a ``TemplateParam`` without one of the template's variables
  answers ``isv.INVALID_PARAMETERS`` ("模板内容与模板参数不匹配").
- ``PhoneNumber``: 11 mainland digits (``1`` + 10), else ``isv.MOBILE_NUMBER_ILLEGAL``;
  ``CountryCode`` other than 86 answers the same (PNVS sends to the mainland only).
- ``##code##`` in TemplateParam: the server generates ``CodeLength`` (4-8, default 4)
  digits (``CodeType`` 1, the default) and keeps it for CheckSmsVerifyCode; any other value
  is sent as given and CheckSmsVerifyCode answers UNKNOWN for it ("用户配置的…阿里云接口
  无法校验").
- Frequency control: a second send to one number (and scheme) within the first's
  ``Interval`` seconds (default 60) answers ``biz.FREQUENCY``, as PNVS does; set
  ``enforce_interval = False`` to switch it off.
- Missing required parameters answer HTTP 400 ``Missing<Name>``; unknown actions HTTP 404
  ``InvalidAction.NotFound``; other common-parameter errors as DysmsapiServer.
"""

from __future__ import annotations

import hmac
import itertools
import json
import random
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.servers.dysmsapi_server import (
    API_VERSION,
    DEFAULT_ACCOUNTS,
    TIMESTAMP_FORMAT,
    RecordedRequest,
    _HTTPServer,
    _Reply,
    normalize_phone,
    sign,
    signed_params,
    string_to_sign,
)

__all__ = [
    "API_VERSION",
    "DEFAULT_SIGN_NAMES",
    "DEFAULT_TEMPLATES",
    "DypnsapiServer",
    "SentVerifyCode",
    "signed_params",
]

HOST_ID = "dypnsapi.aliyuncs.com"
DEFAULT_SIGN_NAMES: frozenset[str] = frozenset({"速通互联验证码"})
DEFAULT_TEMPLATES: dict[str, list[str]] = {
    "100001": ["code", "min"],  # 登录/注册
    "100002": ["code", "min"],  # 修改绑定手机号
    "100003": ["code", "min"],  # 重置密码
}
GENERATE = "##code##"
DEFAULT_INTERVAL = 60
DEFAULT_VALID_TIME = 300
MAX_OUT_ID = 256
_MAINLAND = re.compile(r"^1\d{10}$")
_SENDING = frozenset({"SendSmsVerifyCode"})
_ACTIONS = frozenset({"SendSmsVerifyCode", "CheckSmsVerifyCode"})
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
_DEFAULT_MESSAGES: dict[str, str] = {
    "biz.FREQUENCY": "check frequency failed",
    "isv.BUSINESS_LIMIT_CONTROL": "触发号码天级流控",
    "isv.MOBILE_NUMBER_ILLEGAL": "号码格式非法",
    "isv.OUT_OF_SERVICE": "业务停机",
    "isv.PRODUCT_UNSUBSCRIBE": "产品未开通",
    "isv.RAM_PERMISSION_DENY": "没有访问权限",
    "isp.SYSTEM_ERROR": "系统错误",
}
_DEFAULT_HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("InvalidParameter", "The specified parameter is not valid."),
    403: ("Forbidden.RAM", "User not authorized to operate on the specified resource."),
    500: ("InternalError", "The request processing has failed due to some unknown error."),
    503: ("ServiceUnavailable", "The request has failed due to a temporary failure of the server."),
}


@dataclass
class SentVerifyCode:
    """One accepted SendSmsVerifyCode: what the SMS carried and how it was asked for."""

    phone: str  # 11 national digits
    sign_name: str
    template_code: str
    template_param: dict[str, str]  # as sent, "##code##" replaced by the generated code
    code: str  # the code the SMS carried
    generated: bool  # PNVS made it (##code##): CheckSmsVerifyCode can verify it
    out_id: str | None
    biz_id: str
    request_id: str
    access_key_id: str
    scheme_name: str | None
    valid_time: int
    interval: int
    sent_at: float  # time.time()
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class _Plan:
    kind: str  # "fail" | "http" | "stall" | "drop"
    remaining: int
    args: dict[str, Any]


class _ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.status, self.code, self.message = status, code, message


def _missing(name: str) -> _ApiError:
    return _ApiError(
        400,
        f"Missing{name}",
        f'The input parameter "{name}" that is mandatory for processing this request is not '
        "supplied.",
    )


def _business(code: str, message: str) -> _ApiError:
    return _ApiError(200, code, message)


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


class DypnsapiServer:
    """Fake Dypnsapi endpoint on 127.0.0.1; ``SMSCODE_PNVS_ENDPOINT = server.endpoint``."""

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
        self.accounts = dict(DEFAULT_ACCOUNTS if accounts is None else accounts)
        self._initial = (
            set(DEFAULT_SIGN_NAMES if sign_names is None else sign_names),
            {
                k: list(v)
                for k, v in (DEFAULT_TEMPLATES if templates is None else templates).items()
            },
        )
        self.sign_names: set[str] = set(self._initial[0])
        self.templates: dict[str, list[str]] = {k: list(v) for k, v in self._initial[1].items()}
        self.host = host
        self._requested_port = port
        self.max_clock_skew = max_clock_skew
        self.clock_offset = 0.0  # seconds ahead of this machine (the HTTP Date header uses it)
        self.enforce_interval = True
        self.sent: list[SentVerifyCode] = []
        self.requests: list[RecordedRequest] = []
        self.errors: list[str] = []  # tracebacks of server-side bugs
        self._nonces: set[tuple[str, str]] = set()
        self._plans: deque[_Plan] = deque()
        self._lock = threading.RLock()
        self._seq = itertools.count(1)
        self._stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> DypnsapiServer:
        if self._httpd is not None:
            raise RuntimeError("DypnsapiServer already started")
        self._stopping = threading.Event()
        # The Dysmsapi server's HTTP plumbing asks its owner only for _process, _track,
        # _error_reply, errors, clock_offset and _stopping: this class has them all.
        self._httpd = _HTTPServer(self, (self.host, self._requested_port))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"DypnsapiServer:{self.port}",
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

    def __enter__(self) -> DypnsapiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("DypnsapiServer not started")
        return int(self._httpd.server_address[1])

    @property
    def endpoint(self) -> str:
        """``host:port``: what ``SMSCODE_PNVS_ENDPOINT`` takes."""
        return f"{self.host}:{self.port}"

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    # ----------------------------------------------------------------- test helpers

    def reset(self) -> None:
        """Forget sends, requests, plans, nonces and frequency history; restore the account
        (signs and templates as constructed), the clock and frequency control."""
        with self._lock:
            self.sign_names = set(self._initial[0])
            self.templates = {k: list(v) for k, v in self._initial[1].items()}
            self.clock_offset = 0.0
            self.enforce_interval = True
            self.sent.clear()
            self.requests.clear()
            self.errors.clear()
            self._nonces.clear()
            self._plans.clear()

    def messages_to(self, phone: str) -> list[SentVerifyCode]:
        """Accepted sends to ``phone`` (any prefix form), oldest first."""
        wanted = normalize_phone(phone)
        with self._lock:
            return [m for m in self.sent if m.phone == wanted]

    def last_sms(self, phone: str) -> SentVerifyCode:
        messages = self.messages_to(phone)
        if not messages:
            raise LookupError(f"no SMS sent to {phone}")
        return messages[-1]

    def last_code(self, phone: str) -> str:
        """The code the newest SMS to ``phone`` carried; LookupError if none."""
        return self.last_sms(phone).code

    def fail_next(self, code: str, message: str | None = None, times: int = 1) -> None:
        """The next ``times`` sends answer HTTP 200 with business error ``code``."""
        self._add_plan(
            "fail", times, code=code, message=message or _DEFAULT_MESSAGES.get(code, code)
        )

    def http_error_next(
        self, status: int = 500, body: dict[str, Any] | str | None = None, times: int = 1
    ) -> None:
        """The next ``times`` requests (any action) answer HTTP ``status``."""
        self._add_plan("http", times, status=status, body=body)

    def stall_next(self, seconds: float, times: int = 1, then_record: bool = True) -> None:
        """The next ``times`` sends answer after ``seconds`` (recorded at once with
        ``then_record``, else answered isp.SYSTEM_ERROR late and not recorded)."""
        self._add_plan("stall", times, seconds=seconds, then_record=then_record)

    def drop_next(self, times: int = 1) -> None:
        """The next ``times`` requests (any action) are read, then dropped unanswered."""
        self._add_plan("drop", times)

    def _add_plan(self, kind: str, times: int, **args: Any) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._plans.append(_Plan(kind, times, args))

    def _take_plan(self, action: str) -> _Plan | None:
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

    def now(self) -> datetime:
        return datetime.fromtimestamp(time.time() + self.clock_offset, timezone.utc)

    # ----------------------------------------------------------------- processing

    def _process(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> _Reply:
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
            reply = self._reply_for(err)
        if not reply.drop:
            record.status, record.code, record.request_id = (
                reply.status,
                reply.code,
                reply.request_id,
            )
        return reply

    def _authenticate_and_run(
        self, method: str, path: str, params: dict[str, str], record: RecordedRequest
    ) -> _Reply:
        if path != "/":
            raise _ApiError(404, "InvalidAction.NotFound", "Specified api is not found.")
        if method not in ("GET", "POST"):
            raise _ApiError(400, "UnsupportedHTTPMethod", f"{method} is not supported.")
        for name in _COMMON_REQUIRED:
            if not params.get(name):
                raise _missing(name)
        if params["Format"].upper() != "JSON":
            raise _ApiError(400, "InvalidParameter.Format", "Only Format=JSON here.")
        if params["Version"] != API_VERSION:
            raise _ApiError(400, "InvalidVersion", "Specified parameter Version is not valid.")
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            raise _ApiError(400, "InvalidSignatureMethod", "Specified signature is not supported.")
        try:
            stamp = datetime.strptime(params["Timestamp"], TIMESTAMP_FORMAT).replace(
                tzinfo=timezone.utc
            )
        except ValueError:
            raise _ApiError(
                400, "InvalidTimeStamp.Format", "Specified time stamp is not well formatted."
            ) from None
        if abs((self.now() - stamp).total_seconds()) > self.max_clock_skew:
            raise _ApiError(400, "InvalidTimeStamp.Expired", "Specified time stamp is expired.")
        key_id = params["AccessKeyId"]
        secret = self.accounts.get(key_id)
        if secret is None:
            raise _ApiError(
                404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
            )
        if not hmac.compare_digest(sign(method, params, secret), params["Signature"]):
            raise _ApiError(
                400,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation. "
                "server string to sign is:" + string_to_sign(method, params),
            )
        record.signature_ok = True
        with self._lock:
            nonce = (key_id, params["SignatureNonce"])
            if nonce in self._nonces:
                raise _ApiError(400, "SignatureNonceUsed", "Specified signature nonce was used.")
            self._nonces.add(nonce)
        action = params["Action"]
        if action not in _ACTIONS:
            raise _ApiError(404, "InvalidAction.NotFound", "Specified api is not found.")
        plan = self._take_plan(action)
        if plan is not None:
            return self._apply_plan(plan, params)
        return self._run(action, params)

    def _run(self, action: str, params: dict[str, str]) -> _Reply:
        if action == "SendSmsVerifyCode":
            return self._send(params)
        return self._check(params)

    def _apply_plan(self, plan: _Plan, params: dict[str, str]) -> _Reply:
        args = plan.args
        if plan.kind == "fail":
            return self._business_reply(args["code"], args["message"])
        if plan.kind == "http":
            return self._http_plan_reply(args["status"], args["body"])
        if plan.kind == "drop":
            return _Reply(status=0, body=b"", drop=True)
        if args["then_record"]:
            try:
                reply = self._run(params["Action"], params)
            except _ApiError as err:
                reply = self._reply_for(err)
        else:
            reply = self._business_reply("isp.SYSTEM_ERROR", _DEFAULT_MESSAGES["isp.SYSTEM_ERROR"])
        reply.delay = float(args["seconds"])
        return reply

    # ----------------------------------------------------------------- actions

    @staticmethod
    def _int(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
        raw = params.get(name)
        if raw in (None, ""):
            return default
        try:
            value = int(str(raw))
        except ValueError:
            raise _business("isv.INVALID_PARAMETERS", f"{name} 参数非法") from None
        if not low <= value <= high:
            raise _business("isv.INVALID_PARAMETERS", f"{name} 参数超出范围")
        return value

    def _phone(self, params: Mapping[str, str]) -> str:
        if not params.get("PhoneNumber"):
            raise _missing("PhoneNumber")
        if params.get("CountryCode", "86") not in ("", "86"):
            raise _business("isv.MOBILE_NUMBER_ILLEGAL", "号码格式非法")
        phone = params["PhoneNumber"].strip()
        if not _MAINLAND.match(phone):
            raise _business("isv.MOBILE_NUMBER_ILLEGAL", "号码格式非法")
        return phone

    def _send(self, params: dict[str, str]) -> _Reply:
        phone = self._phone(params)
        for name in ("SignName", "TemplateCode", "TemplateParam"):
            if not params.get(name):
                raise _missing(name)
        sign_name, template = params["SignName"], params["TemplateCode"]
        with self._lock:
            if sign_name not in self.sign_names:
                raise _business("isv.SMS_SIGN_ILLEGAL", "签名不合法")
            variables = self.templates.get(template)
        if variables is None:
            raise _business("isv.SMS_TEMPLATE_ILLEGAL", "模板不合法")
        try:
            values = json.loads(params["TemplateParam"])
        except ValueError:
            raise _business("isv.INVALID_PARAMETERS", "TemplateParam 不是合法的JSON") from None
        if not isinstance(values, dict) or any(not isinstance(v, str) for v in values.values()):
            raise _business("isv.INVALID_PARAMETERS", "TemplateParam 参数值必须为字符串")
        if any(not values.get(v) for v in variables):
            raise _business("isv.INVALID_PARAMETERS", "模板内容与模板参数不匹配")
        length = self._int(params, "CodeLength", 4, 4, 8)
        valid_time = self._int(params, "ValidTime", DEFAULT_VALID_TIME, 1, 86400)
        interval = self._int(params, "Interval", DEFAULT_INTERVAL, 0, 86400)
        out_id = params.get("OutId") or None
        if out_id is not None and len(out_id) > MAX_OUT_ID:
            raise _business("isv.INVALID_PARAMETERS", "OutId 超出长度限制")
        scheme = params.get("SchemeName") or None
        generated = "code" in values and values["code"] == GENERATE
        code = (
            "".join(random.choice("0123456789") for _ in range(length))
            if generated
            else values.get("code", "")
        )
        values = {k: (code if v == GENERATE else v) for k, v in values.items()}
        now = time.time()
        with self._lock:
            if self.enforce_interval:
                previous = [m for m in self.sent if m.phone == phone and m.scheme_name == scheme]
                if previous and now - previous[-1].sent_at < previous[-1].interval:
                    raise _business("biz.FREQUENCY", _DEFAULT_MESSAGES["biz.FREQUENCY"])
            sms = SentVerifyCode(
                phone=phone,
                sign_name=sign_name,
                template_code=template,
                template_param=values,
                code=code,
                generated=generated,
                out_id=out_id,
                biz_id=f"{int(now * 1000)}^{next(self._seq)}",
                request_id=_request_id(),
                access_key_id=params["AccessKeyId"],
                scheme_name=scheme,
                valid_time=valid_time,
                interval=interval,
                sent_at=now,
                params=dict(params),
            )
            self.sent.append(sms)
        model: dict[str, Any] = {"RequestId": sms.request_id, "OutId": out_id, "BizId": sms.biz_id}
        if params.get("ReturnVerifyCode", "").lower() == "true":
            model["VerifyCode"] = code
        return self._json_reply(
            200,
            {
                "AccessDeniedDetail": "",
                "Code": "OK",
                "Message": "成功",
                "Success": True,
                "Model": model,
            },
            request_id=sms.request_id,
        )

    def _check(self, params: dict[str, str]) -> _Reply:
        phone = self._phone(params)
        if not params.get("VerifyCode"):
            raise _missing("VerifyCode")
        scheme = params.get("SchemeName") or None
        now = time.time()
        with self._lock:
            candidates = [
                m for m in self.sent if m.phone == phone and m.scheme_name == scheme and m.generated
            ]
        newest = candidates[-1] if candidates else None
        passed = (
            newest is not None
            and now - newest.sent_at <= newest.valid_time
            and hmac.compare_digest(newest.code, params["VerifyCode"])
        )
        request_id = _request_id()
        return self._json_reply(
            200,
            {
                "AccessDeniedDetail": "",
                "Code": "OK",
                "Message": "成功",
                "Success": True,
                "Model": {
                    "VerifyResult": "PASS" if passed else "UNKNOWN",
                    "OutId": params.get("OutId") or None,
                },
            },
            request_id=request_id,
        )

    # ----------------------------------------------------------------- answers

    @staticmethod
    def _json_reply(status: int, payload: dict[str, Any], request_id: str | None = None) -> _Reply:
        return _Reply(
            status=status,
            body=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
            request_id=request_id or payload.get("RequestId"),
            code=payload.get("Code"),
        )

    def _business_reply(self, code: str, message: str) -> _Reply:
        request_id = _request_id()
        return self._json_reply(
            200,
            {
                "AccessDeniedDetail": "",
                "Code": code,
                "Message": message,
                "Success": False,
                "RequestId": request_id,
            },
        )

    def _error_reply(self, status: int, code: str, message: str) -> _Reply:
        return self._json_reply(
            status,
            {
                "RequestId": _request_id(),
                "HostId": HOST_ID,
                "Code": code,
                "Message": message,
                "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&product=Dypnsapi",
            },
        )

    def _reply_for(self, err: _ApiError) -> _Reply:
        if err.status == 200:
            return self._business_reply(err.code, err.message)
        return self._error_reply(err.status, err.code, err.message)

    def _http_plan_reply(self, status: int, body: dict[str, Any] | str | None) -> _Reply:
        if isinstance(body, str):
            return _Reply(status=status, body=body.encode("utf-8"), content_type="text/plain")
        if body is None:
            code, message = _DEFAULT_HTTP_ERRORS.get(
                status, ("InternalError" if status >= 500 else "InvalidParameter", f"HTTP {status}")
            )
            return self._error_reply(status, code, message)
        return self._json_reply(status, body)
