"""The apps gunicorn serves: flask-smscode's blueprint, and the baselines it is compared with.

Two apps, two gunicorn servers, so that the baselines run in processes that never import
flask-smscode (its Alibaba sender must not be what the SendSms baseline's SDK runs on):

- ``gunicorn 'bench.app:create_app()'``: the package's ``sms_bp`` and nothing else.
- ``gunicorn 'bench.app:create_baseline_app()'``: the baselines, in the same Flask with the
  same JSON body parsing and the same Redis:

  - ``POST /base/get``: one Redis GET and a JSON answer: the floor of any endpoint that
    touches Redis once.
  - ``POST /base/verify`` (naive): the verify people write from tutorials: GET the failure
    count, GET the plain code, compare, then DEL it or INCR + EXPIRE the failures (3 or 4
    round trips), no token.
  - ``POST /base/careful``: a careful hand-written verify doing the package's work (the code
    kept as an HMAC, attempts counted, single use, a signed token returned) in ONE short Lua
    script: what a competent engineer would write instead of using the package.
  - ``POST /base/sendsms``: one SendSms call through aliyun-python-sdk-core (``AcsClient`` +
    ``CommonRequest``, exactly as an app without the package would) and a JSON answer.

Both read ``BENCH_REDIS_URL``, ``BENCH_PREFIX``, ``BENCH_PROVIDER`` (host:port of the
loopback Dysmsapi server) and optionally ``BENCH_EXTRA`` (JSON: extra SMSCODE_* settings).

:func:`instructions_main` is the in-process WSGI loop that bench/run.py runs under
valgrind's callgrind (instructions per request; see bench/README.md).
"""

from __future__ import annotations

import base64
import hmac
import http.client
import io
import json
import os
import re
import secrets
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import redis
from flask import Flask, Response, jsonify, request

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.settings import (
    BASE_FAIL_WINDOW_SECONDS,
    BASE_MAX_FAILURES,
    BASE_TOKEN_TTL_SECONDS,
    SECRET_KEY,
    app_config,
    base_code_key,
    base_fail_key,
    careful_hash,
    careful_key,
    quiet_package_logs,
)

_PHONE = re.compile(r"1[3-9][0-9]{9}")

# The careful baseline's whole decision, one round trip: read the two fields, refuse a
# locked phone, consume a right code (single use), count a wrong one. {outcome, left}.
CAREFUL_VERIFY_LUA = """
local h = redis.call('HMGET', KEYS[1], 'c', 'f')
if not h[1] then return {0, 0} end
local f = tonumber(h[2] or '0')
local max = tonumber(ARGV[2])
if f >= max then return {-1, 0} end
if h[1] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {1, 0}
end
redis.call('HINCRBY', KEYS[1], 'f', 1)
return {2, max - f - 1}
"""


def _environment() -> tuple[str, str, str, dict[str, Any]]:
    extra = json.loads(os.environ.get("BENCH_EXTRA") or "{}")
    return (
        os.environ["BENCH_REDIS_URL"],
        os.environ["BENCH_PREFIX"],
        os.environ["BENCH_PROVIDER"],
        dict(extra),
    )


def create_app() -> Flask:
    """The package's blueprint, configured as a production app would (bench/settings.py)."""
    from flask_smscode import sms_bp

    redis_url, prefix, provider, extra = _environment()
    quiet_package_logs()
    app = Flask("bench")
    app.config.update(app_config(redis_url, prefix, provider, extra))
    app.register_blueprint(sms_bp)
    return app


def create_baseline_app() -> Flask:
    """The baselines; this process never imports flask_smscode."""
    redis_url, prefix, provider, _ = _environment()
    app = Flask("bench-baselines")
    # The same Flask setup as the package's app: a production app has a SECRET_KEY (the
    # careful verify signs with it too), and with one Flask's session interface costs every
    # request of either app the same few microseconds.
    app.config["SECRET_KEY"] = SECRET_KEY
    store = redis.Redis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
    careful = store.register_script(CAREFUL_VERIFY_LUA)
    secret = SECRET_KEY.encode()
    acs = _acs_client()

    @app.post("/base/get")
    def base_get() -> Response:
        phone = _field("phone")
        value = store.get(base_code_key(prefix, phone))
        return jsonify({"ok": True, "found": value is not None})

    @app.post("/base/sendsms")
    def base_sendsms() -> Response | tuple[Response, int]:
        phone = _field("phone")
        if not _PHONE.fullmatch(phone):
            return jsonify({"ok": False, "error": "invalid_phone"}), 400
        code = f"{secrets.randbelow(10**6):06d}"
        answer = json.loads(acs.do_action_with_exception(_send_request(provider, [phone], code)))
        if answer.get("Code") != "OK":
            return jsonify({"ok": False, "error": "provider_error"}), 502
        return jsonify({"ok": True})

    @app.post("/base/verify")
    def base_verify() -> Response | tuple[Response, int]:
        phone, code = _field("phone"), _field("code")
        if not _PHONE.fullmatch(phone):
            return jsonify({"ok": False, "error": "invalid_phone"}), 400
        fail_key = base_fail_key(prefix, phone)
        failures = store.get(fail_key)
        if failures is not None and int(failures) >= BASE_MAX_FAILURES:
            return jsonify({"ok": False, "error": "too_many_attempts"}), 429
        stored = store.get(base_code_key(prefix, phone))
        if stored is None:
            return jsonify({"ok": False, "error": "code_expired"}), 400
        if isinstance(stored, bytes) and hmac.compare_digest(stored, code.encode()):
            store.delete(base_code_key(prefix, phone))
            return jsonify({"ok": True})
        store.incr(fail_key)
        store.expire(fail_key, BASE_FAIL_WINDOW_SECONDS)
        return jsonify({"ok": False, "error": "invalid_code"}), 400

    @app.post("/base/careful")
    def base_careful() -> Response | tuple[Response, int]:
        phone, code, purpose = _field("phone"), _field("code"), _field("purpose") or "login"
        if not _PHONE.fullmatch(phone) or not (len(code) == 6 and code.isascii()):
            return jsonify({"ok": False, "error": "invalid_request"}), 400
        outcome, left = careful(
            keys=[careful_key(prefix, phone)],
            args=[careful_hash(phone, code), BASE_MAX_FAILURES],
        )
        if outcome == 1:
            expires = int(time.time()) + BASE_TOKEN_TTL_SECONDS
            claim = f"{phone}.{purpose}.{expires}.{secrets.token_hex(8)}"
            mac = hmac.digest(secret, claim.encode(), "sha256")
            token = claim + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
            return jsonify({"ok": True, "token": token})
        if outcome == 2:
            return jsonify({"ok": False, "error": "invalid_code", "attempts_left": left}), 400
        if outcome == -1:
            return jsonify({"ok": False, "error": "too_many_attempts"}), 429
        return jsonify({"ok": False, "error": "code_expired"}), 400

    return app


def _field(name: str) -> str:
    data: Any = request.get_json(silent=True) or {}
    value = data.get(name) if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""


def _acs_client() -> Any:
    from aliyunsdkcore.client import AcsClient

    return AcsClient(
        "test-key-id",
        "test-key-secret",
        "cn-hangzhou",
        auto_retry=False,
        max_retry_time=0,
        timeout=5,
        connect_timeout=3,
        proxy={"http": None, "https": None},
    )


def _send_request(
    endpoint: str, phones: list[str], code: str | None, params: str | None = None
) -> Any:
    from aliyunsdkcore.http import protocol_type
    from aliyunsdkcore.request import CommonRequest

    req = CommonRequest(domain=endpoint, version="2017-05-25", action_name="SendSms")
    req.set_method("POST")
    req.set_protocol_type(protocol_type.HTTP)
    req.set_accept_format("json")
    req.add_query_param("PhoneNumbers", ",".join(phones))
    req.add_query_param("SignName", "TestSign")
    req.add_query_param("TemplateCode", "SMS_123456789" if code else "SMS_NOTIFY")
    req.add_query_param("TemplateParam", params or json.dumps({"code": code}))
    req.add_query_param("OutId", secrets.token_hex(16))
    return req


# ------------------------------------------------------------------ notification


def notify_raw(endpoint: str, numbers: list[str], concurrency: int) -> float:
    """The raw SDK on a notification's numbers: SendSms calls of 1000 numbers,
    ``concurrency`` in flight, one warm ``AcsClient`` (as a plain app would write it, no
    parsing); the wall seconds. Runs in a process that never imported flask_smscode."""
    acs = _acs_client()
    params = json.dumps({"name": "张三", "time": "22:00"}, ensure_ascii=False)
    acs.do_action_with_exception(_send_request(endpoint, ["13800138000"], None, params))
    _reset_provider(endpoint)  # the provider counts this notification's numbers only
    batches = [numbers[i : i + 1000] for i in range(0, len(numbers), 1000)]

    def one(batch: list[str]) -> None:
        answer = json.loads(
            acs.do_action_with_exception(_send_request(endpoint, batch, None, params))
        )
        if answer.get("Code") != "OK":
            raise RuntimeError(f"raw SendSms answered {answer.get('Code')}")

    with ThreadPoolExecutor(concurrency) as pool:
        started = time.perf_counter()
        list(pool.map(one, batches))
        return time.perf_counter() - started


def notify_package(endpoint: str, numbers: list[str], concurrency: int) -> tuple[float, float]:
    """``AliyunSms.send_message`` on the same numbers (warm client): wall seconds, and the
    ``time.time()`` at which it was called (the provider reports the first call's arrival)."""
    from flask_smscode import AliyunSms

    sms = AliyunSms(
        "test-key-id",
        "test-key-secret",
        "TestSign",
        endpoint=endpoint,
        protocol="http",
        max_concurrency=concurrency,
    )
    params = {"name": "张三", "time": "22:00"}
    sms.send_message(["13800138000"], params, "SMS_NOTIFY")  # SDK imported, pool warm
    _reset_provider(endpoint)  # the warm-up call is not this notification's first call
    called = time.time()
    started = time.perf_counter()
    answers = sms.send_message(numbers, params, "SMS_NOTIFY")
    wall = time.perf_counter() - started
    if not all(a.ok for a in answers):
        raise RuntimeError("a notification call failed")
    return wall, called


def _reset_provider(endpoint: str) -> None:
    """bench/provider.py's statistics restart here (first call's arrival, numbers)."""
    host, port = endpoint.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("GET", "/_bench/reset")
        connection.getresponse().read()
    finally:
        connection.close()


def notify_main() -> None:
    """``python -c 'from bench.app import notify_main; notify_main()' raw|package ENDPOINT
    HEAD COUNT CONCURRENCY``: one notification in a fresh process, a JSON line out."""
    mode, endpoint, head, count, concurrency = sys.argv[1:6]
    numbers = [f"{head}{i:08d}" for i in range(int(count))]
    if mode == "raw":
        print(json.dumps({"wall": notify_raw(endpoint, numbers, int(concurrency))}))
    else:
        wall, called = notify_package(endpoint, numbers, int(concurrency))
        print(json.dumps({"wall": wall, "called": called}))


# ------------------------------------------------------------------ instructions


def _wsgi_environ(path: str, body: bytes) -> dict[str, Any]:
    """What gunicorn hands the app for wrk's request, built by hand (cheap, and the same in
    the empty loop, so it cancels out)."""
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def instructions_main() -> None:
    """Run under callgrind with ``--dump-before=getppid``: ``python -c 'from bench.app
    import instructions_main; instructions_main()' package|baseline PATH BODIES EXPECT
    WARM N``.

    Builds the app, serves WARM requests (imports, pools, scripts), then marks the counts
    (``os.getppid()`` makes callgrind dump), runs the loop over the next N bodies building
    each environ WITHOUT calling the app (the harness), marks, runs the same loop calling
    the app, marks. bench/run.py takes (third dump − second dump) ÷ N: the app's
    instructions per request, harness and start-up cancelled. Prints a JSON line with the
    answers that were not EXPECT (must be 0)."""
    kind, path, bodies_file, expect, warm, count = sys.argv[1:7]
    app = create_app() if kind == "package" else create_baseline_app()
    bodies = [line.encode() for line in Path(bodies_file).read_text().splitlines() if line]
    warm_n, n = int(warm), int(count)
    if len(bodies) < warm_n + n:
        raise SystemExit(f"{len(bodies)} bodies for {warm_n} + {n} requests")
    bad: list[str] = []
    statuses: list[str] = []

    def start_response(status: str, headers: list[Any], exc_info: Any = None) -> Any:
        statuses.append(status)
        return None

    def call(body: bytes) -> None:
        result = app(_wsgi_environ(path, body), start_response)
        try:
            b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if not statuses[-1].startswith(expect):
            bad.append(statuses[-1])

    for body in bodies[:warm_n]:
        call(body)
    measured = bodies[warm_n : warm_n + n]
    os.getppid()  # dump 1: start-up and warm-up
    for body in measured:
        _wsgi_environ(path, body)
    os.getppid()  # dump 2: the empty loop
    for body in measured:
        call(body)
    os.getppid()  # dump 3: the loop with the app
    print(json.dumps({"bad": len(bad), "first_bad": bad[:3]}), flush=True)
