"""The app gunicorn serves: flask-smscode's blueprint plus the baselines it is compared with.

``gunicorn 'bench.app:create_app()'`` with ``BENCH_REDIS_URL``, ``BENCH_PREFIX`` and
``BENCH_PROVIDER`` (host:port of the loopback Dysmsapi server) in the environment.

Baselines, in the same app, same Flask, same JSON body parsing, same Redis:
- ``POST /base/get``: one Redis GET and a JSON answer — the floor of any endpoint that
  touches Redis once.
- ``POST /base/sendsms``: one SendSms call through aliyun-python-sdk-core (AcsClient +
  CommonRequest, like the package) and a JSON answer — the floor of a send.
- ``POST /base/verify``: the verify people write themselves: GET the failure count, GET
  the code, compare, then DEL it or INCR + EXPIRE the failures (3 or 4 round trips, no
  per-IP limit, a plain-text code, a regex for the phone).
"""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Any

import redis
from flask import Flask, Response, jsonify, request

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.settings import (
    BASE_FAIL_WINDOW_SECONDS,
    BASE_MAX_FAILURES,
    app_config,
    base_code_key,
    base_fail_key,
    quiet_package_logs,
)
from flask_smscode import sms_bp

_PHONE = re.compile(r"1[3-9][0-9]{9}")


def create_app() -> Flask:
    redis_url = os.environ["BENCH_REDIS_URL"]
    prefix = os.environ["BENCH_PREFIX"]
    provider = os.environ["BENCH_PROVIDER"]
    quiet_package_logs()
    app = Flask("bench")
    app.config.update(app_config(redis_url, prefix, provider))
    app.register_blueprint(sms_bp)
    store = redis.Redis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
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
        answer = json.loads(acs.do_action_with_exception(_send_request(provider, phone, code)))
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
        if hmac.compare_digest(stored, code.encode()):
            store.delete(base_code_key(prefix, phone))
            return jsonify({"ok": True})
        store.incr(fail_key)
        store.expire(fail_key, BASE_FAIL_WINDOW_SECONDS)
        return jsonify({"ok": False, "error": "invalid_code"}), 400

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


def _send_request(endpoint: str, phone: str, code: str) -> Any:
    from aliyunsdkcore.http import protocol_type
    from aliyunsdkcore.request import CommonRequest

    req = CommonRequest(domain=endpoint, version="2017-05-25", action_name="SendSms")
    req.set_method("POST")
    req.set_protocol_type(protocol_type.HTTP)
    req.set_accept_format("json")
    req.add_query_param("PhoneNumbers", phone)
    req.add_query_param("SignName", "TestSign")
    req.add_query_param("TemplateCode", "SMS_123456789")
    req.add_query_param("TemplateParam", json.dumps({"code": code}))
    req.add_query_param("OutId", secrets.token_hex(16))
    return req
