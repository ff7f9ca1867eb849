"""Hostile input: every field missing, null, of the wrong type, huge, in other scripts' digits
or with invisible marks; bodies that are not JSON objects, repeated form fields, wrong media
types, every HTTP method. Each answer is a 4xx with a stable code (never a 5xx), no SMS goes
out, nothing is written to the store and no attempt is counted."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from werkzeug.datastructures import MultiDict

from flask_smscode import get_service
from tests.helpers import PHONE
from tests.security.support import OTHER_PHONE, assert_error, assert_untouched, redis_url_of, wrong

BIG = "1" * 10_240
ARABIC_PHONE = "\u0661\u0663\u0668\u0660\u0660\u0661\u0663\u0668\u0660\u0660\u0660"
ARABIC_CODE = "\u0661\u0662\u0663\u0664\u0665\u0666"
FULLWIDTH_CODE = "\uff11\uff12\uff13\uff14\uff15\uff16"
DEVANAGARI_CODE = "\u0967\u0968\u0969\u096a\u096b\u096c"

# Values of the wrong kind for any field, and what each field answers for them.
WRONG_TYPES: list[tuple[str, Any]] = [
    ("null", None),
    ("number", 13800138000),
    ("float", 1.5),
    ("bool", True),
    ("list", [PHONE]),
    ("empty_list", []),
    ("object", {"phone": PHONE}),
    ("empty", ""),
]

PHONE_CASES: list[tuple[str, Any, str]] = [
    (f"phone_{name}", value, "invalid_request") for name, value in WRONG_TYPES
] + [
    ("phone_10kB", BIG, "invalid_phone"),
    ("phone_arabic_digits", ARABIC_PHONE, "invalid_phone"),
    ("phone_letters", "1380013800O", "invalid_phone"),
    ("phone_only_marks", "\u200b\u202a\u202c", "invalid_phone"),
    ("phone_landline", "010 1234 5678", "invalid_phone"),
    ("phone_control_chars", "13800138000\x00", "invalid_phone"),
    ("phone_crlf", "13800138000\r\nX: y", "invalid_phone"),
    ("phone_other_region", "+852 5123 4567", "region_not_allowed"),
]

PURPOSE_CASES: list[tuple[str, Any, str]] = [
    (f"purpose_{name}", value, "invalid_request") for name, value in WRONG_TYPES
] + [
    ("purpose_10kB", "p" * 10_240, "invalid_request"),
    ("purpose_unknown", "admin", "invalid_request"),
    ("purpose_case", "LOGIN", "invalid_request"),
    ("purpose_marks", "login\u200b", "invalid_request"),
]

CODE_CASES: list[tuple[str, Any, str]] = [
    (f"code_{name}", value, "invalid_request") for name, value in WRONG_TYPES
] + [
    ("code_int", 123456, "invalid_request"),
    ("code_10kB", BIG, "invalid_request"),
    ("code_arabic_digits", ARABIC_CODE, "invalid_request"),
    ("code_fullwidth_digits", FULLWIDTH_CODE, "invalid_request"),
    ("code_devanagari_digits", DEVANAGARI_CODE, "invalid_request"),
    ("code_zero_width", "123\u200b456", "invalid_request"),
    ("code_bidi", "\u202a123456\u202c", "invalid_request"),
    ("code_spaces", " 123456 ", "invalid_request"),
    ("code_short", "12345", "invalid_request"),
    ("code_long", "1234567", "invalid_request"),
    ("code_sign", "+12345", "invalid_request"),
]

# (name, keyword arguments of client.post, error): bodies that are not one JSON object.
BODY_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("json_broken", {"data": '{"phone": ', "content_type": "application/json"}, "invalid_request"),
    ("json_deep", {"data": "[" * 1000, "content_type": "application/json"}, "invalid_request"),
    (
        "json_deep_objects",
        {"data": '{"a":' * 5000, "content_type": "application/json"},
        "invalid_request",
    ),
    ("json_array", {"json": [{"phone": PHONE}]}, "invalid_request"),
    ("json_string", {"json": PHONE}, "invalid_request"),
    ("json_number", {"json": 13800138000}, "invalid_request"),
    ("json_null", {"data": "null", "content_type": "application/json"}, "invalid_request"),
    (
        "json_not_utf8",
        {"data": b'{"phone": "\xff\xfe"}', "content_type": "application/json"},
        "invalid_request",
    ),
    ("json_nan", {"data": '{"phone": NaN}', "content_type": "application/json"}, "invalid_request"),
    (
        "json_as_text_plain",
        {"data": json.dumps({"phone": PHONE}), "content_type": "text/plain"},
        "invalid_request",
    ),
    (
        "xml",
        {"data": f"<phone>{PHONE}</phone>", "content_type": "application/xml"},
        "invalid_request",
    ),
    ("no_body", {}, "invalid_request"),
    (
        "form_repeated_phone",
        {"data": MultiDict([("phone", PHONE), ("phone", OTHER_PHONE)])},
        "invalid_request",
    ),
    (
        "form_repeated_purpose",
        {"data": MultiDict([("phone", PHONE), ("purpose", "login"), ("purpose", "signup")])},
        "invalid_request",
    ),
    (
        "multipart_file_as_phone",
        {"data": {"phone": (PHONE.encode(), "p.txt")}, "content_type": "multipart/form-data"},
        "invalid_request",
    ),
]


def _post(client, endpoint: str, **kwargs: Any):
    data = kwargs.get("data")
    if isinstance(data, dict) and not isinstance(data, MultiDict):
        # (bytes, filename): a file upload, opened afresh each time
        kwargs["data"] = {
            k: (io.BytesIO(v[0]), v[1]) if isinstance(v, tuple) else v for k, v in data.items()
        }
    response = client.post(f"/sms/{endpoint}", **kwargs)
    assert response.status_code < 500, response.get_data(as_text=True)
    return response


def _body(endpoint: str, **override: Any) -> dict[str, Any]:
    body = {"phone": PHONE, "purpose": "login"}
    if endpoint == "verify":
        body["code"] = "123456"
    for key, value in override.items():
        if value is _MISSING:
            body.pop(key, None)
        else:
            body[key] = value
    return body


_MISSING = object()


def _cases(endpoint: str) -> list[tuple[str, dict[str, Any], str]]:
    cases = [("phone_missing", {"json": _body(endpoint, phone=_MISSING)}, "invalid_request")]
    cases += [(name, {"json": _body(endpoint, phone=v)}, e) for name, v, e in PHONE_CASES]
    cases += [(name, {"json": _body(endpoint, purpose=v)}, e) for name, v, e in PURPOSE_CASES]
    cases += [
        (f"form_{name}", {"data": _form(_body(endpoint, purpose=v))}, e)
        for name, v, e in PURPOSE_CASES
        if isinstance(v, str) and v
    ]
    if endpoint == "verify":
        cases.append(("code_missing", {"json": _body(endpoint, code=_MISSING)}, "invalid_request"))
        cases += [(name, {"json": _body(endpoint, code=v)}, e) for name, v, e in CODE_CASES]
    cases += BODY_CASES
    return cases


def _form(body: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in body.items()}


def _params(endpoint: str) -> list[Any]:
    return [pytest.param(kwargs, error, id=name) for name, kwargs, error in _cases(endpoint)]


@pytest.mark.parametrize(("kwargs", "error"), _params("send"))
def test_hostile_send_is_a_stable_4xx_and_writes_nothing(
    make_app, sms_server, request, kwargs, error
):
    app = make_app()
    assert_error(_post(app.test_client(), "send", **kwargs), 400, error)
    assert sms_server.requests == []
    assert_untouched(app, redis_url=redis_url_of(request))


@pytest.mark.parametrize(("kwargs", "error"), _params("verify"))
def test_hostile_verify_is_a_stable_4xx_and_writes_nothing(
    make_app, sms_server, request, kwargs, error
):
    app = make_app()
    assert_error(_post(app.test_client(), "verify", **kwargs), 400, error)
    assert sms_server.requests == []
    assert_untouched(app, redis_url=redis_url_of(request))


def test_hostile_verifies_cost_no_attempt_of_a_live_code(make_app, sms_server):
    app = make_app(SMSCODE_IP_VERIFY_LIMITS="10000/hour")
    client = app.test_client()
    assert client.post("/sms/send", json={"phone": PHONE}).status_code == 200
    code = sms_server.last_code(PHONE)
    for name, kwargs, _error in _cases("verify"):
        if name.startswith(("phone_", "purpose_", "form_purpose")):
            continue  # they name another phone or purpose: nothing of this one to touch
        response = _post(client, "verify", **kwargs)
        assert response.status_code == 400 and response.get_json()["error"] != "invalid_code"
    assert get_service(app).status(PHONE, "login").failures == 0
    body = assert_error(
        client.post("/sms/verify", json={"phone": PHONE, "code": wrong(code)}), 400, "invalid_code"
    )
    assert body["attempts_left"] == 4  # the first attempt counted is this one
    assert client.post("/sms/verify", json={"phone": PHONE, "code": code}).status_code == 200


@pytest.mark.parametrize("endpoint", ["send", "verify"])
def test_a_body_over_max_content_length_is_413(make_app, sms_server, request, endpoint):
    app = make_app(MAX_CONTENT_LENGTH=1024)
    body = _body(endpoint, phone=PHONE + " " * 2000)
    for kwargs in ({"json": body}, {"data": _form(body)}):
        assert_error(_post(app.test_client(), endpoint, **kwargs), 413, "request_too_large")
    assert sms_server.requests == []
    assert_untouched(app, redis_url=redis_url_of(request))


METHODS = [
    "GET",
    "HEAD",
    "PUT",
    "PATCH",
    "DELETE",
    "TRACE",
    "CONNECT",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "QUERY",
    "SEARCH",
    "PURGE",
    "LINK",
    "X-ANY",
]


@pytest.mark.parametrize("endpoint", ["send", "verify"])
def test_every_http_method_but_post_writes_nothing(make_app, sms_server, request, endpoint):
    app = make_app()
    client = app.test_client()
    for method in METHODS:
        response = client.open(
            f"/sms/{endpoint}", method=method, json=_body(endpoint), query_string={"phone": PHONE}
        )
        assert response.status_code == 405, method
        assert response.headers["Allow"] == "POST, OPTIONS"
        assert response.headers["Cache-Control"] == "no-store"
        if method != "HEAD":
            assert_error(response, 405, "method_not_allowed")
    options = client.options(f"/sms/{endpoint}")
    assert options.status_code == 200 and options.headers["Allow"] == "POST, OPTIONS"
    assert sms_server.requests == []
    assert_untouched(app, redis_url=redis_url_of(request))
