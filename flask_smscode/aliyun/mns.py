"""Alibaba Cloud MNS (Message Service) queues over their documented REST API: the
``SMSCODE_ALIYUN_MNS_*`` settings, the request signature, ReceiveMessage and DeleteMessage.

Why not a client library: ``aliyun-mns`` (1.1.5) was last released in 2017;
``aliyun-mns-sdk`` is maintained but brings its own HTTP stack, untyped, for the two calls
used here. The protocol is small and documented, so it is written here on the standard
library (``http.client``) and tested against a loopback server that checks the signature
(tests/servers/mns_server.py).

**Signature** (MNS "Authorization" header, as Alibaba's SDKs compute it)::

    Authorization: MNS <AccessKeyId>:base64(HMAC-SHA1(AccessKeySecret, StringToSign))
    StringToSign = VERB "\\n" Content-MD5 "\\n" Content-Type "\\n" Date "\\n"
                   CanonicalizedMNSHeaders CanonicalizedResource

``CanonicalizedMNSHeaders`` is every ``x-mns-*`` header, lower-cased, sorted, as
``name:value\\n``; ``CanonicalizedResource`` the request path with its query string. The
temporary credentials of Alibaba's SMS queues (QueryTokenForMnsQueue, :mod:`.queue`) add
their STS token as the ``security-token`` header (not signed).

**Calls.** ``GET /queues/<name>/messages?numOfMessages=<n>&waitseconds=<s>``
(BatchReceiveMessage, long polling: answered at once when a message is there, else after
``waitseconds`` with 404 ``MessageNotExist``) and ``DELETE
/queues/<name>/messages?ReceiptHandle=<handle>`` (204). A received message stays invisible
for the queue's visibility timeout; one not deleted in time is received again: that is what
makes consuming at-least-once.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import http.client
import re
import ssl
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

from flask_smscode.config import get_setting
from flask_smscode.errors import ConfigurationError
from flask_smscode.senders.network import is_loopback

MNS_VERSION = "2015-06-06"
MESSAGE_TYPES = {"SmsReport": "report", "SmsUp": "reply"}  # queue message type -> kind
MAX_ANSWER_BYTES = 4 * 1_048_576  # 16 messages of at most 64 KB each, with room to spare
_ACCOUNT_ID = re.compile(r"[0-9]{1,32}")
_QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,119}")
_NS = "{http://mns.aliyuncs.com/doc/v1/}"


@dataclass(frozen=True)
class MnsSettings:
    """The validated ``SMSCODE_ALIYUN_MNS_*`` keys (the AccessKey is the sender's own).

    ``queues`` maps each consumed message type (``SmsReport``, ``SmsUp``) to its queue's
    name, ``Alicom-Queue-<AccountId>-<type>`` unless overridden.
    """

    account_id: str | None
    endpoint: str
    token_endpoint: str
    protocol: str
    queues: Mapping[str, str] = field(default_factory=dict)
    wait_seconds: int = 10
    batch_size: int = 16
    timeout: float = 5.0  # read timeout beyond the long polling wait

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MnsSettings:
        """Validate every key, naming the wrong one (also when no account id is set: an app
        with a typo fails at start-up, not when the consumer first runs)."""

        def get(key: str) -> Any:
            return get_setting(config, key)

        account = get("SMSCODE_ALIYUN_MNS_ACCOUNT_ID")
        if isinstance(account, int) and not isinstance(account, bool):
            account = str(account)
        if account is not None and (
            not isinstance(account, str) or not _ACCOUNT_ID.fullmatch(account)
        ):
            raise ConfigurationError(
                "SMSCODE_ALIYUN_MNS_ACCOUNT_ID must be your Alibaba Cloud account id (digits), "
                "as in the queue name Alicom-Queue-<AccountId>-SmsReport."
            )
        protocol = str(get("SMSCODE_ALIYUN_PROTOCOL")).lower()
        endpoints = {}
        for key in ("SMSCODE_ALIYUN_MNS_ENDPOINT", "SMSCODE_ALIYUN_MNS_TOKEN_ENDPOINT"):
            value = get(key)
            if not isinstance(value, str) or not value or "/" in value:
                raise ConfigurationError(f"{key} must be a host[:port] (no scheme, no path).")
            endpoints[key] = value
        types = get("SMSCODE_ALIYUN_MNS_MESSAGE_TYPES")
        if isinstance(types, str):
            types = [types]
        if (
            not isinstance(types, (list, tuple, set, frozenset))
            or not types
            or not all(t in MESSAGE_TYPES for t in types)
        ):
            raise ConfigurationError(
                "SMSCODE_ALIYUN_MNS_MESSAGE_TYPES must be a non-empty list of "
                "'SmsReport' (delivery receipts) and 'SmsUp' (replies)."
            )
        queues: dict[str, str] = {}
        for message_type, key in (
            ("SmsReport", "SMSCODE_ALIYUN_MNS_REPORT_QUEUE"),
            ("SmsUp", "SMSCODE_ALIYUN_MNS_REPLY_QUEUE"),
        ):
            name = get(key)
            if name is not None and (not isinstance(name, str) or not _QUEUE_NAME.fullmatch(name)):
                raise ConfigurationError(f"{key} must be a queue name (letters, digits, -).")
            if message_type in types and (name or account):
                queues[message_type] = name or f"Alicom-Queue-{account}-{message_type}"
        for key, value in endpoints.items():
            if queues and protocol == "http" and not is_loopback(value):
                raise ConfigurationError(
                    f"SMSCODE_ALIYUN_PROTOCOL 'http' is only allowed for a loopback {key}: "
                    "plain HTTP puts the queue's credentials on the wire in clear."
                )
        numbers = {}
        for key, low, high in (
            ("SMSCODE_ALIYUN_MNS_WAIT_SECONDS", 1, 30),
            ("SMSCODE_ALIYUN_MNS_BATCH_SIZE", 1, 16),
        ):
            value = get(key)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigurationError(
                    f"{key} must be a whole number from {low} to {high}; got {value!r}."
                )
            numbers[key] = value
        timeout = get("SMSCODE_ALIYUN_TIMEOUT_SECONDS")
        return cls(
            account_id=account,
            endpoint=endpoints["SMSCODE_ALIYUN_MNS_ENDPOINT"],
            token_endpoint=endpoints["SMSCODE_ALIYUN_MNS_TOKEN_ENDPOINT"],
            protocol="http" if protocol == "http" else "https",
            queues=queues,
            wait_seconds=numbers["SMSCODE_ALIYUN_MNS_WAIT_SECONDS"],
            batch_size=numbers["SMSCODE_ALIYUN_MNS_BATCH_SIZE"],
            timeout=float(timeout) if isinstance(timeout, (int, float)) else 5.0,
        )

    def require_queues(self) -> Mapping[str, str]:
        """The queues to consume; without an account id (or queue names) there are none."""
        if not self.queues:
            raise ConfigurationError(
                "SMSCODE_ALIYUN_MNS_ACCOUNT_ID must be set to consume Alibaba's queues "
                "(or SMSCODE_ALIYUN_MNS_REPORT_QUEUE / SMSCODE_ALIYUN_MNS_REPLY_QUEUE)."
            )
        return self.queues


class MnsCredentials(NamedTuple):
    """Temporary (STS) credentials of one queue, valid until ``expires_at`` (epoch s)."""

    access_key_id: str
    access_key_secret: str
    security_token: str
    expires_at: float


@dataclass(frozen=True)
class MnsMessage:
    """One received message; ``body`` as MNS returned it (base64 text for Alibaba's SMS
    queues), ``receipt_handle`` what deletes it (valid until it becomes visible again)."""

    message_id: str
    receipt_handle: str = field(repr=False)
    body: str = field(repr=False)
    body_md5: str = ""
    dequeue_count: int = 1


class MnsError(Exception):
    """A failed MNS call: ``status`` 0 when no answer came (network), ``code`` MNS' error
    code (bounded: it is logged and counted)."""

    def __init__(self, status: int, code: str, request_id: str | None = None) -> None:
        super().__init__(f"MNS answered HTTP {status} {code}")
        self.status = status
        self.code = code
        self.request_id = request_id

    @property
    def credentials_refused(self) -> bool:
        """Whether fresh credentials may help (expired or refused token)."""
        return self.status in (401, 403)


def string_to_sign(method: str, headers: Mapping[str, str], resource: str) -> str:
    """MNS' StringToSign of a request (``headers`` with lower-case names)."""
    mns_headers = "".join(
        f"{name}:{headers[name]}\n" for name in sorted(h for h in headers if h.startswith("x-mns-"))
    )
    return (
        f"{method}\n{headers.get('content-md5', '')}\n{headers.get('content-type', '')}\n"
        f"{headers.get('date', '')}\n{mns_headers}{resource}"
    )


def signature(secret: str, text: str) -> str:
    """base64(HMAC-SHA1(secret, text))."""
    digest = hmac.new(secret.encode(), text.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class MnsClient:
    """The two queue calls, one HTTP connection per call (a long poll dominates anyway)."""

    def __init__(self, endpoint: str, protocol: str = "https", timeout: float = 5.0) -> None:
        self.endpoint = endpoint
        self.protocol = protocol
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<MnsClient endpoint={self.endpoint!r}>"

    def receive(
        self, queue: str, credentials: MnsCredentials, wait_seconds: int, batch_size: int
    ) -> list[MnsMessage]:
        """BatchReceiveMessage with long polling; ``[]`` when the queue stayed empty."""
        resource = (
            f"/queues/{quote(queue, safe='')}/messages?numOfMessages={batch_size}"
            f"&waitseconds={wait_seconds}"
        )
        status, body = self._request("GET", resource, credentials, wait_seconds)
        if status == 404 and _error_code(body) == "MessageNotExist":
            return []
        if status != 200:
            raise MnsError(status, _error_code(body) or "error", _request_id(body))
        try:
            root = _parse_xml(body)
        except ET.ParseError:
            raise MnsError(status, "InvalidAnswer") from None
        items = [root] if _local(root.tag) == "Message" else list(root)
        return [_message(item) for item in items if _local(item.tag) == "Message"]

    def delete(self, queue: str, credentials: MnsCredentials, receipt_handle: str) -> None:
        """DeleteMessage; raises MnsError (e.g. 404 ``ReceiptHandleError`` when the message
        became visible again and someone received it since)."""
        resource = (
            f"/queues/{quote(queue, safe='')}/messages?ReceiptHandle="
            f"{quote(receipt_handle, safe='')}"
        )
        status, body = self._request("DELETE", resource, credentials, 0)
        if status != 204 and status != 200:
            raise MnsError(status, _error_code(body) or "error", _request_id(body))

    def _request(
        self, method: str, resource: str, credentials: MnsCredentials, wait_seconds: int
    ) -> tuple[int, bytes]:
        headers = {
            "content-type": "text/xml;charset=utf-8",
            "date": email.utils.formatdate(usegmt=True),
            "x-mns-version": MNS_VERSION,
        }
        text = string_to_sign(method, headers, resource)
        sent = {
            **headers,
            "authorization": (
                f"MNS {credentials.access_key_id}:{signature(credentials.access_key_secret, text)}"
            ),
            "security-token": credentials.security_token,
        }
        timeout = wait_seconds + self.timeout
        host = urlsplit(f"//{self.endpoint}")
        connection: http.client.HTTPConnection
        if self.protocol == "https":
            connection = http.client.HTTPSConnection(
                host.hostname or "",
                host.port,
                timeout=timeout,
                context=ssl.create_default_context(),
            )
        else:
            connection = http.client.HTTPConnection(host.hostname or "", host.port, timeout=timeout)
        try:
            connection.request(method, resource, headers=sent)
            answer = connection.getresponse()
            body = answer.read(MAX_ANSWER_BYTES)
            return answer.status, body
        except (OSError, http.client.HTTPException) as exc:  # timeouts are OSErrors
            failure = MnsError(0, type(exc).__name__)
        finally:
            connection.close()
        raise failure  # outside the except block: no traceback chain with the request


def _parse_xml(body: bytes) -> ET.Element:
    """An MNS answer's XML. A document type (entities: "billion laughs") is refused before
    parsing; expat fetches no external entity, so nothing else in it can reach out."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise ET.ParseError("a document type is not allowed")
    return ET.fromstring(body)  # noqa: S314  # no DTD (refused above), bounded size


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(node: ET.Element, name: str) -> str:
    found = node.find(f"{_NS}{name}")
    if found is None:
        found = node.find(name)
    return (found.text or "") if found is not None else ""


def _message(node: ET.Element) -> MnsMessage:
    count = _child(node, "DequeueCount")
    return MnsMessage(
        message_id=_child(node, "MessageId")[:64],
        receipt_handle=_child(node, "ReceiptHandle"),
        body=_child(node, "MessageBody"),
        body_md5=_child(node, "MessageBodyMD5").upper(),
        dequeue_count=int(count) if count.isdigit() else 1,
    )


_CODE = re.compile(r"[A-Za-z][A-Za-z0-9.]{0,63}")


def _error_code(body: bytes) -> str:
    """The ``<Code>`` of an MNS error answer, if it is a short identifier."""
    try:
        root = _parse_xml(body)
    except ET.ParseError:
        return ""
    code = _child(root, "Code")
    return code if _CODE.fullmatch(code) else ""


def _request_id(body: bytes) -> str | None:
    try:
        root = _parse_xml(body)
    except ET.ParseError:
        return None
    return _child(root, "RequestId")[:64] or None
