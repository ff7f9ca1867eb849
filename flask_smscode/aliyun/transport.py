"""The one door to Alibaba Cloud's RPC API: a lean, signed POST on a kept-alive connection.

Why not ``AcsClient.do_action_with_exception``: measured in-process against the loopback
Dysmsapi server, one SendSms through the SDK's request stack (its vendored requests/urllib3,
~3,000 Python calls) costs about 1.8 ms of CPU, of which signing is only ~0.27 ms; the same
call signed the same way and POSTed here costs about a fifth of that (figures in bench/ and
the module's tests). The SDK stays the dependency and the source of the algorithm: the
signature is computed by ``aliyunsdkcore.auth.algorithm.sha_hmac1`` (its HMAC-SHA1, name and
version), over a string-to-sign composed exactly as ``rpc_signature_composer`` composes it
(tests/aliyun/test_rpc.py compares both, byte for byte). Nothing of the SDK is patched: an
earlier version pointed the SDK's signer at :mod:`.encoding` globally, which changed a
third-party library under its host app.

What the call keeps from the SDK's way, and the traps it keeps defused:

- the request is what the SDK sends for a ``CommonRequest``: ``POST /?<signed params>`` with an
  empty body and its headers (``x-acs-action``, ``x-acs-version``, ``x-sdk-client``...);
- HTTPS unless ``protocol == "http"`` (settings allow that for a loopback endpoint only), the
  certificate verified against the system's trust store;
- no retries (SendSms is not idempotent) but one: a pooled connection found broken while the
  request was being *written* is replaced once, because a request whose last byte never left
  cannot have been processed. A reused connection that closes after the whole request left
  (``RemoteDisconnected`` with nothing read) is *not* retried: the server may have sent the SMS
  before dying, and a second SMS is worse than a 46003 ``delivery_unknown``. Idle connections
  are checked before reuse (a server's close is seen as readable EOF) and dropped after
  :data:`IDLE_SECONDS`, so that race is narrow;
- short timeouts: ``connect_timeout`` for TCP + TLS, ``timeout`` for every read; proxy
  environment variables are ignored (``http.client`` never reads them);
- a ``None`` parameter is left out;
- nothing is logged (the signed URL holds the AccessKeyId, the numbers and TemplateParam
  with the code), and every failure becomes an :class:`~flask_smscode.errors.AliyunSmsError`
  raised *outside* the ``except`` block, its text never carrying the URL;
- failures are classified as before: no connection (refused, connect timeout, DNS, TLS
  verification) or a request not written in full = not sent; a reset or a read timeout after
  the request left = ``delivery_unknown``. Both carry the SDK's code ``SDK.HttpError``; an
  HTTP error answer is :class:`AliyunProviderRefused` with the provider's Code and
  RequestId, as the SDK reported it.

Connections are pooled per ``(scheme, host[:port])`` in each :class:`Transport`, thread-safe
(gunicorn gthread) and fork-safe: a pool notices it now lives in another process and starts
empty rather than share sockets with its parent.

PNVS (``aliyun/pnvs/``, product Dypnsapi) goes through this same door unchanged: its API
version is also 2017-05-25 and its host comes from the settings' ``endpoint``
(``SMSCODE_PNVS_ENDPOINT``), so one ``Transport`` per product's settings is all it takes.
"""

from __future__ import annotations

import functools
import http.client
import json
import logging
import os
import platform
import select
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from flask_smscode.aliyun.encoding import percent_encode
from flask_smscode.aliyun.errors import AliyunProviderRefused, AliyunRequestFailed, AliyunSmsError
from flask_smscode.aliyun.settings import AliyunSettings
from flask_smscode.metrics import STATS

API_VERSION = "2017-05-25"
# The code aliyunsdkcore gives a request that failed on the network; outcomes.provider_down
# and the PNVS table read it, so the lean call keeps it.
SDK_HTTP_ERROR = "SDK.HttpError"
SDK_UNKNOWN_SERVER_ERROR = "SDK.UnknownServerError"
# An idle pooled connection older than this is closed instead of reused: gateways close
# idle keep-alive connections after some tens of seconds, and reusing one just as it is
# being closed is the one case that can end in "delivery unknown".
IDLE_SECONDS = 15.0
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # aliyunsdkcore's ISO 8601, UTC


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
    """Drop every record of the SDK's own loggers (idempotent).

    The package no longer calls the SDK's request stack, so it no longer does this itself
    (that would change the logging of an app's own SDK calls); an app that makes its own
    ``AcsClient`` calls may opt in."""
    for name in _SDK_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropRecords) for f in logger.filters):
            logger.addFilter(_DropRecords())


# -- signing ------------------------------------------------------------------------------


def _algorithm() -> Any:
    """The SDK's HMAC-SHA1 signer module (imported on first use: ``import flask_smscode``
    stays free of the SDK; this import alone costs ~7 ms, not the SDK client's ~0.1 s)."""
    from aliyunsdkcore.auth.algorithm import sha_hmac1

    return sha_hmac1


# Values that repeat from call to call: their encoding is looked up, not recomputed.
_FIXED = frozenset(
    {"Version", "Action", "Format", "RegionId", "SignatureMethod", "SignatureType"}
    | {"SignatureVersion", "AccessKeyId", "SignName", "TemplateCode"}
)
_encode_name = functools.lru_cache(maxsize=512)(percent_encode)


def signed_query(
    action: str,
    params: Mapping[str, str | None],
    *,
    access_key_id: str,
    access_key_secret: str,
    region: str,
    method: str = "POST",
    timestamp: str | None = None,
    nonce: str | None = None,
) -> tuple[str, str]:
    """The signed RPC query string (no leading ``?``) and its string-to-sign.

    The parameters, their order and their encoding are those of the SDK's ``CommonRequest``
    signed by ``rpc_signature_composer.get_signed_url``: the call's own parameters, then
    Version, Action, Format, RegionId and the signature's fields; the signature is the SDK's
    ``sha_hmac1.get_sign_string`` over the sorted, RFC 3986 percent-encoded parameters.
    ``timestamp`` and ``nonce`` are for tests that compare with the SDK.
    """
    mac = _algorithm()
    full: dict[str, str] = {k: v for k, v in params.items() if v is not None}
    full["Version"] = API_VERSION
    full["Action"] = action
    full["Format"] = "JSON"
    full.setdefault("RegionId", region)
    full["Timestamp"] = timestamp or time.strftime(TIMESTAMP_FORMAT, time.gmtime())
    full["SignatureMethod"] = mac.get_signer_name()
    full["SignatureType"] = mac.get_signer_type()
    full["SignatureVersion"] = mac.get_signer_version()
    full["SignatureNonce"] = nonce or os.urandom(16).hex()
    full["AccessKeyId"] = access_key_id
    encoded = {
        k: _encode_name(k) + "=" + (_encode_name(v) if k in _FIXED else percent_encode(v))
        for k, v in full.items()
    }
    canonical = "&".join(encoded[k] for k in sorted(full))
    # percent_encode(canonical), quicker: besides unreserved characters, the canonical
    # string only holds the "%" of its escapes, "=" and "&" (a 1000-number SendSms has 1000).
    string_to_sign = (
        method + "&%2F&" + canonical.replace("%", "%25").replace("=", "%3D").replace("&", "%26")
    )
    signature = mac.get_sign_string(string_to_sign, access_key_secret + "&")
    query = "&".join(encoded.values()) + "&Signature=" + percent_encode(signature)
    return query, string_to_sign


@functools.lru_cache(maxsize=64)
def _headers(action: str) -> str:
    """The headers after ``Host``, as the SDK sends them for a ``CommonRequest`` (its
    User-Agent shape names this package instead of the SDK's vendored requests), ending the
    request: the body is empty and everything is in the query."""
    import aliyunsdkcore

    if not action.isascii() or not action.isalnum():
        raise ValueError("an RPC action is a plain name")
    agent = (
        f"AlibabaCloud ({platform.system()} {platform.release()};{platform.machine()}) "
        f"Python/{platform.python_version()} Core/{aliyunsdkcore.__version__} flask-smscode"
    )
    return (
        f"User-Agent: {agent}\r\n"
        "Accept-Encoding: identity\r\n"
        "Accept: */*\r\n"
        "Connection: keep-alive\r\n"
        f"x-acs-action: {action}\r\n"
        f"x-acs-version: {API_VERSION}\r\n"
        "x-sdk-invoke-type: common\r\n"
        "x-sdk-client: python/2.0.0\r\n"
        "Content-Length: 0\r\n\r\n"
    )


# -- connections --------------------------------------------------------------------------


def _dropped(sock: socket.socket) -> bool:
    """Whether an idle kept-alive socket was closed by the server (or holds stray bytes):
    an idle HTTP/1.1 connection has nothing to read unless the peer closed it."""
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class _Pool:
    """Idle kept-alive sockets of one process, per ``(scheme, host[:port])``, newest reused
    first. A pool inherited across ``fork()`` starts empty in the child: two processes
    writing to one socket would mix their requests."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, str], list[tuple[socket.socket, float]]] = {}

    def _own(self) -> None:
        if self._pid != os.getpid():  # forked: forget the parent's sockets and lock
            self._lock = threading.Lock()
            self._idle = {}
            self._pid = os.getpid()

    def take(self, key: tuple[str, str]) -> socket.socket | None:
        """A live idle socket to ``key``, or None."""
        self._own()
        now = time.monotonic()
        while True:
            with self._lock:
                stack = self._idle.get(key)
                if not stack:
                    return None
                sock, since = stack.pop()
            if now - since <= IDLE_SECONDS and not _dropped(sock):
                return sock
            sock.close()

    def give(self, key: tuple[str, str], sock: socket.socket) -> None:
        """Keep ``sock`` for the next call, unless the pool is full or was forked since."""
        if self._pid == os.getpid():
            with self._lock:
                stack = self._idle.setdefault(key, [])
                if len(stack) < self.limit:
                    stack.append((sock, time.monotonic()))
                    return
        sock.close()

    def close(self) -> None:
        """Close every idle socket (the transport is being dropped)."""
        self._own()
        with self._lock:
            idle, self._idle = self._idle, {}
        for stack in idle.values():
            for sock, _ in stack:
                sock.close()


class _Failed(Exception):
    """Internal: one attempt's failure, already classified; never leaves this module."""

    def __init__(self, not_sent: bool) -> None:
        super().__init__()
        self.not_sent = not_sent


def _address(scheme: str, host: str) -> tuple[str, int]:
    """``host[:port]`` (``[v6]:port`` too) as a socket address; ValueError when malformed."""
    parts = urllib.parse.urlsplit("//" + host)
    if not parts.hostname:
        raise ValueError("no host name")
    return parts.hostname, parts.port or (443 if scheme == "https" else 80)


# -- the transport ------------------------------------------------------------------------


class Transport:
    """A thread-safe Alibaba Cloud RPC caller: a signed POST per call on pooled connections.

    The request is written by hand (its headers are fixed but for the action and the
    query: ``http.client.HTTPConnection``'s per-header checks were a tenth of the call) and
    the answer parsed by :class:`http.client.HTTPResponse` (status, headers, chunked or
    ``Content-Length`` body, whether the server keeps the connection)."""

    def __init__(self, settings: AliyunSettings) -> None:
        self.settings = settings
        self._pool = _Pool(max(10, settings.max_concurrency))
        self._tls: ssl.SSLContext | None = None

    def __repr__(self) -> str:  # never show the secret
        return f"<Transport endpoint={self.settings.endpoint!r}>"

    def close(self) -> None:
        """Close the idle kept-alive connections (they are also closed when collected)."""
        self._pool.close()

    def _context(self) -> ssl.SSLContext:
        """One verifying TLS context per transport (loading the trust store costs ms)."""
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def _connect(self, scheme: str, host: str) -> socket.socket:
        """A new connection, TCP and TLS done under ``connect_timeout``; any error here means
        nothing was sent."""
        s = self.settings
        hostname, port = _address(scheme, host)
        sock = socket.create_connection((hostname, port), timeout=s.connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                sock = self._context().wrap_socket(sock, server_hostname=hostname)
            sock.settimeout(s.timeout)  # from now on: the read timeout
        except BaseException:
            sock.close()
            raise
        return sock

    def _exchange(self, scheme: str, host: str, request: bytes) -> tuple[int, bytes]:
        """Send ``request`` once (plus one replacement of a pooled connection found broken
        while writing); the answer's status and body, or :class:`_Failed`."""
        key = (scheme, host)
        sock = self._pool.take(key)
        for _ in range(2):
            reused = sock is not None
            if sock is None:
                try:
                    sock = self._connect(scheme, host)
                except (OSError, ValueError):
                    raise _Failed(not_sent=True) from None
            try:
                # One write: the request's last byte is the end of its headers, so a write
                # that fails leaves a request no server can have acted on.
                sock.sendall(request)
            except OSError:
                sock.close()
                if reused:  # the pooled socket died before the request left in full
                    sock = None
                    continue
                raise _Failed(not_sent=True) from None
            try:
                response = http.client.HTTPResponse(sock, method="POST")
                response.begin()
                body = response.read()
            except (OSError, http.client.HTTPException):
                sock.close()  # the request left: the server may have acted on it
                raise _Failed(not_sent=False) from None
            if response.will_close:
                sock.close()
            else:
                self._pool.give(key, sock)
            return response.status, body
        raise _Failed(not_sent=True)  # pragma: no cover - the loop always returns or raises

    def call(
        self, action: str, params: Mapping[str, str | None], *, domain: str | None = None
    ) -> dict[str, Any]:
        """Make one RPC call and return the decoded JSON answer.

        ``domain`` sends it to another product of the same RPC version and signature instead
        (Dybaseapi's ``QueryTokenForMnsQueue``, for the message queue: aliyun/queue.py).

        Raises 46002 (:class:`AliyunProviderRefused`) for an HTTP error answer and 46003
        (:class:`AliyunRequestFailed`) when the request failed; a ``Code`` other than
        ``OK`` in a 200 answer is left to the caller (business errors arrive as HTTP 200).
        """
        s = self.settings
        started = time.perf_counter()
        query, _ = signed_query(
            action,
            params,
            access_key_id=s.access_key_id,
            access_key_secret=s.access_key_secret,
            region=s.region,
        )
        host = domain or s.endpoint
        scheme = "http" if s.protocol == "http" else "https"
        failure: AliyunSmsError | None = None
        status, body = 0, b""
        try:
            try:
                head = f"POST /?{query} HTTP/1.1\r\nHost: {host}\r\n{_headers(action)}"
                request = head.encode("ascii")
            except (UnicodeEncodeError, ValueError):  # a non-ASCII host or action name
                raise _Failed(not_sent=True) from None
            status, body = self._exchange(scheme, host, request)
        except _Failed as exc:
            failure = AliyunRequestFailed(
                f"The {action} call could not reach Alibaba Cloud"
                if exc.not_sent
                else f"The {action} call got no answer from Alibaba Cloud "
                "(the message may have been sent)",
                provider_code=SDK_HTTP_ERROR,
                delivery_unknown=not exc.not_sent,
            )
        if failure is None and not 200 <= status < 300:
            failure = _refusal(action, status, body)
        if failure is not None:
            outcome = (
                failure.provider_code
                if isinstance(failure, AliyunProviderRefused)
                else ("unconfirmed" if failure.delivery_unknown else "request_failed")
            )
            STATS.provider_call(action, outcome or "error", time.perf_counter() - started)
            raise failure
        answer = _json_object(body)
        if answer is None:
            STATS.provider_call(action, "invalid_answer", time.perf_counter() - started)
            raise AliyunRequestFailed(f"The {action} answer was not a JSON object")
        STATS.provider_call(
            action, str(answer.get("Code") or "no_code"), time.perf_counter() - started
        )
        return answer


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _refusal(action: str, status: int, body: bytes) -> AliyunProviderRefused:
    """An HTTP error answer as the SDK reports it for a ``CommonRequest``: the body's Code
    (``SDK.UnknownServerError`` without one) and RequestId. ``SignatureDoesNotMatch`` stays
    itself (the SDK's ``InvalidAccessKeySecret`` rewrite never fires for a CommonRequest,
    whose outer request carries no string-to-sign), so the outcome tables see what they saw."""
    answer = _json_object(body) or {}
    request_id = answer.get("RequestId")
    return AliyunProviderRefused(
        f"Alibaba Cloud refused the {action} call (HTTP {status})",
        provider_code=str(answer.get("Code") or SDK_UNKNOWN_SERVER_ERROR),
        request_id=str(request_id) if request_id else None,
        http_status=status,
    )
