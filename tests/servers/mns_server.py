"""A loopback fake of Alibaba Cloud MNS queues, as Alibaba's SMS queues use them.

Why: the consumer (flask_smscode/aliyun/queue.py, mns.py) must be tested against a server
that checks what the real one checks — the ``MNS <AccessKeyId>:<signature>`` header over
VERB, Content-MD5, Content-Type, Date, the ``x-mns-*`` headers and the resource, and the STS
``security-token`` of temporary credentials — and behaves as a queue does: long polling
(``waitseconds``), a visibility timeout after which an undeleted message is received again
with a new receipt handle, and DeleteMessage by the *current* receipt handle only.

Credentials are issued by :meth:`MnsServer.issue_token` (what Dybaseapi's
QueryTokenForMnsQueue hands out: the loopback Dysmsapi server calls it, see
``DysmsapiServer.token_issuer``); each token is bound to its queue and expires.

Usage::

    with MnsServer(visibility_timeout=1.0) as mns:
        mns.send_json("Alicom-Queue-1-SmsUp", {"phone_number": "13800138000", ...})
        dto = mns.issue_token("Alicom-Queue-1-SmsUp", ttl=3600)
        ...
        assert mns.deleted == [...]
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
NS = "http://mns.aliyuncs.com/doc/v1/"


@dataclass
class QueuedMessage:
    message_id: str
    body: str  # as stored: base64 text for Alibaba's SMS queues
    body_md5: str
    enqueued: float
    visible_at: float = 0.0
    handle: str = ""
    dequeue_count: int = 0


@dataclass
class Token:
    access_key_id: str
    access_key_secret: str
    security_token: str
    queue: str
    expires_at: float


@dataclass
class MnsRequest:
    method: str
    path: str
    query: dict[str, str]
    status: int = 0
    code: str = ""
    signature_ok: bool = False


@dataclass
class _State:
    queues: dict[str, list[QueuedMessage]] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)


def string_to_sign(method: str, headers: dict[str, str], resource: str) -> str:
    """MNS' StringToSign, computed independently of the package's."""
    canonical = "".join(
        f"{k}:{headers[k].strip()}\n" for k in sorted(h for h in headers if h.startswith("x-mns-"))
    )
    return "\n".join(
        [
            method,
            headers.get("content-md5", ""),
            headers.get("content-type", ""),
            headers.get("date", ""),
            canonical + resource,
        ]
    )


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, body = self.server.owner.handle(method, self.path, headers)
        self.send_response(status)
        self.send_header("Content-Type", "text/xml;charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-mns-request-id", secrets.token_hex(12).upper())
        self.end_headers()
        self.wfile.write(body)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: MnsServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner


class MnsServer:
    """The fake; ``endpoint`` is ``127.0.0.1:<port>`` (SMSCODE_ALIYUN_MNS_ENDPOINT)."""

    def __init__(self, visibility_timeout: float = 30.0, max_clock_skew: float = 900.0) -> None:
        self.visibility_timeout = visibility_timeout
        self.max_clock_skew = max_clock_skew
        self.state = _State()
        self.requests: list[MnsRequest] = []
        self.deleted: list[str] = []  # message ids, in deletion order
        self.received: list[str] = []  # message ids, each time one was handed out
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> MnsServer:
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def endpoint(self) -> str:
        assert self._httpd is not None
        return f"127.0.0.1:{self._httpd.server_address[1]}"

    # -- the test's side ---------------------------------------------------------------
    def issue_token(self, queue: str, ttl: float = 3600.0) -> dict[str, str]:
        """New temporary credentials for ``queue``: QueryTokenForMnsQueue's MessageTokenDTO.
        ``ttl`` may be shorter than Alibaba's (an hour) to test renewal."""
        token = Token(
            "STS." + secrets.token_hex(8),
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(48),
            queue,
            time.time() + ttl,
        )
        with self._cond:
            self.state.tokens[token.access_key_id] = token
        expire = datetime.fromtimestamp(token.expires_at, CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")
        now = datetime.now(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")
        return {
            "AccessKeyId": token.access_key_id,
            "AccessKeySecret": token.access_key_secret,
            "SecurityToken": token.security_token,
            "CreateTime": now,
            "ExpireTime": expire,
        }

    def send_raw(self, queue: str, body: str, body_md5: str | None = None) -> str:
        """Enqueue ``body`` as stored (no encoding); returns the message id."""
        message_id = f"{next(self._ids):016X}"
        md5 = body_md5 if body_md5 is not None else hashlib.md5(body.encode()).hexdigest().upper()
        with self._cond:
            self.state.queues.setdefault(queue, []).append(
                QueuedMessage(message_id, body, md5, time.time())
            )
            self._cond.notify_all()
        return message_id

    def send_json(self, queue: str, item: Any) -> str:
        """Enqueue one object as Alibaba does: base64 of its JSON; MessageBodyMD5 the MD5 of
        the decoded JSON (as Alibaba's receive samples check it)."""
        raw = json.dumps(item, ensure_ascii=False).encode("utf-8")
        return self.send_raw(
            queue, base64.b64encode(raw).decode(), hashlib.md5(raw).hexdigest().upper()
        )

    def pending(self, queue: str) -> int:
        """Messages still in ``queue`` (visible or not)."""
        with self._cond:
            return len(self.state.queues.get(queue, []))

    # -- the protocol --------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        parts = urlsplit(raw_path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        record = MnsRequest(method, parts.path, query)
        self.requests.append(record)
        status, body = self._handle(method, raw_path, parts.path, query, headers, record)
        record.status = status
        return status, body

    def _handle(
        self,
        method: str,
        resource: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        record: MnsRequest,
    ) -> tuple[int, bytes]:
        if headers.get("x-mns-version") != "2015-06-06":
            return self._error(record, 400, "InvalidArgument", "x-mns-version is missing")
        date = headers.get("date", "")
        try:
            sent = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return self._error(record, 400, "InvalidArgument", "Date is not an HTTP date")
        if abs(time.time() - sent) > self.max_clock_skew:
            return self._error(record, 403, "TimeExpired", "the request's Date is too old")
        auth = headers.get("authorization", "")
        if not auth.startswith("MNS ") or ":" not in auth:
            return self._error(record, 403, "AccessDenied", "no MNS authorization")
        key_id, _, given = auth[4:].partition(":")
        with self._cond:
            token = self.state.tokens.get(key_id)
        if token is None:
            return self._error(record, 403, "InvalidAccessKeyId", "unknown access key")
        expected = base64.b64encode(
            hmac.new(
                token.access_key_secret.encode(),
                string_to_sign(method, headers, resource).encode(),
                hashlib.sha1,
            ).digest()
        ).decode()
        if not hmac.compare_digest(expected, given):
            return self._error(record, 403, "SignatureDoesNotMatch", "signature mismatch")
        record.signature_ok = True
        if headers.get("security-token") != token.security_token:
            return self._error(record, 403, "InvalidSecurityToken", "bad security token")
        if time.time() >= token.expires_at:
            return self._error(record, 401, "SecurityTokenExpired", "the token expired")
        segments = path.split("/")
        if len(segments) != 4 or segments[1] != "queues" or segments[3] != "messages":
            return self._error(record, 404, "InvalidPath", "no such resource")
        queue = unquote(segments[2])
        if queue != token.queue:
            return self._error(record, 403, "AccessDenied", "the token is for another queue")
        if method == "GET":
            return self._receive(record, queue, query)
        return self._delete(record, queue, query)

    def _receive(self, record: MnsRequest, queue: str, query: dict[str, str]) -> tuple[int, bytes]:
        wait = min(30, int(query.get("waitseconds") or 0))
        count = max(1, min(16, int(query.get("numOfMessages") or 1)))
        deadline = time.time() + wait
        with self._cond:
            while True:
                now = time.time()
                ready = [m for m in self.state.queues.get(queue, []) if m.visible_at <= now][:count]
                if ready or now >= deadline:
                    break
                invisible = [m.visible_at for m in self.state.queues.get(queue, [])]
                next_visible = min([t for t in invisible if t > now], default=deadline)
                self._cond.wait(max(0.01, min(deadline, next_visible) - now))
            for message in ready:
                message.visible_at = now + self.visibility_timeout
                message.handle = secrets.token_hex(16)
                message.dequeue_count += 1
                self.received.append(message.message_id)
        if not ready:
            return self._error(record, 404, "MessageNotExist", "Message not exist.")
        items = "".join(
            "<Message>"
            f"<MessageId>{m.message_id}</MessageId>"
            f"<ReceiptHandle>{m.handle}</ReceiptHandle>"
            f"<MessageBodyMD5>{m.body_md5}</MessageBodyMD5>"
            f"<MessageBody>{_xml(m.body)}</MessageBody>"
            f"<EnqueueTime>{int(m.enqueued * 1000)}</EnqueueTime>"
            f"<NextVisibleTime>{int(m.visible_at * 1000)}</NextVisibleTime>"
            f"<DequeueCount>{m.dequeue_count}</DequeueCount>"
            "<Priority>8</Priority>"
            "</Message>"
            for m in ready
        )
        body = f'<?xml version="1.0" encoding="UTF-8"?><Messages xmlns="{NS}">{items}</Messages>'
        return 200, body.encode()

    def _delete(self, record: MnsRequest, queue: str, query: dict[str, str]) -> tuple[int, bytes]:
        handle = query.get("ReceiptHandle", "")
        now = time.time()
        with self._cond:
            messages = self.state.queues.get(queue, [])
            for message in messages:
                # A handle is valid until the message becomes visible again.
                if message.handle == handle and handle and message.visible_at > now:
                    messages.remove(message)
                    self.deleted.append(message.message_id)
                    return 204, b""
        return self._error(record, 404, "ReceiptHandleError", "the receipt handle is invalid")

    @staticmethod
    def _error(record: MnsRequest, status: int, code: str, message: str) -> tuple[int, bytes]:
        record.code = code
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error xmlns="{NS}"><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>{secrets.token_hex(12).upper()}</RequestId>"
            "<HostId>http://127.0.0.1</HostId></Error>"
        )
        return status, body.encode()


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


ACCOUNT_ID = "1234567890123456"
REPORT_QUEUE = f"Alicom-Queue-{ACCOUNT_ID}-SmsReport"
REPLY_QUEUE = f"Alicom-Queue-{ACCOUNT_ID}-SmsUp"


def queue_config(mns: MnsServer, sms_server: Any, *, token_ttl: float = 3600.0) -> dict[str, Any]:
    """App settings that consume ``mns``'s queues with tokens issued through ``sms_server``'s
    QueryTokenForMnsQueue (which it signs-checks like every RPC call); installs the issuer."""
    sms_server.token_issuer = lambda message_type, queue: mns.issue_token(queue, token_ttl)
    return {
        "SMSCODE_ALIYUN_MNS_ACCOUNT_ID": ACCOUNT_ID,
        "SMSCODE_ALIYUN_MNS_ENDPOINT": mns.endpoint,
        "SMSCODE_ALIYUN_MNS_TOKEN_ENDPOINT": sms_server.endpoint,
        "SMSCODE_ALIYUN_MNS_WAIT_SECONDS": 1,
    }


def sms_up(phone: str, content: str, sequence_id: int, send_time: str = "") -> dict[str, Any]:
    """One SmsUp object, as Alibaba puts it in the queue (and in the HTTP push's array)."""
    return {
        "phone_number": phone,
        "send_time": send_time or datetime.now(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S"),
        "content": content,
        "sign_name": "TestSign",
        "dest_code": "1069000012345",
        "sequence_id": sequence_id,
    }
