"""flask_smscode/openapi.yaml against the code, by behaviour.

The document is loaded from the installed package, validated as OpenAPI, and then every
documented answer of every documented operation is provoked on a real app (memory:// and
Redis, the real Aliyun sender talking to the loopback Dysmsapi server) and the real JSON
answer and headers are validated against the documented response. The scenario table
must cover exactly the (path, status, error code) triples the document allows, so a new
documented answer needs a scenario and a new scenario needs documenting.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from flask_smscode import SmsCodeError, get_service
from flask_smscode.config import DEFAULTS, MAX_CODE_TTL_SECONDS
from flask_smscode.web import blueprint as blueprint_module
from tests.helpers import E164, PHONE, send, verify, wrong
from tests.servers.redis_server import free_port

SPEC_URI = "urn:flask-smscode:openapi"
SPEC: dict[str, Any] = yaml.safe_load(
    (files("flask_smscode") / "openapi.yaml").read_text(encoding="utf-8")
)
REGISTRY = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(SPEC))
OPERATIONS = [
    (path, method)
    for path, item in SPEC["paths"].items()
    for method in item
    if method in {"get", "put", "post", "delete", "options", "head", "patch"}
]

# Answered by the blueprint's own handlers, not by raising an SmsCodeError.
HTTP_LEVEL = {"request_too_large", "internal_error"}
# SmsCodeError codes no request to the two routes can produce: InvalidToken is raised only
# by check_token(), which the app's own views call in Python.
PYTHON_ONLY = {"invalid_token"}
# Fallbacks of the blueprint's HTTPException handler that these routes cannot reach:
# nothing in the views aborts with a status outside _HTTP_ERROR_CODES.
UNREACHABLE = {"http_error"}
# Values that change from answer to answer; only their presence is compared to examples.
VOLATILE = {"retry_after", "token"}


# -- reading the document ----------------------------------------------------------------


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def deref(node: Any, pointer: str) -> tuple[Any, str]:
    """Follow local ``$ref``s of an OpenAPI object; return it and its JSON pointer."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        pointer, node = ref[1:], SPEC
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, pointer


def validator(pointer: str) -> jsonschema.Draft202012Validator:
    """A validator for the schema at ``pointer`` in the document, its $refs resolved."""
    return jsonschema.Draft202012Validator({"$ref": f"{SPEC_URI}#{pointer}"}, registry=REGISTRY)


def documented_response(path: str, status: int, method: str = "post") -> tuple[dict, str]:
    responses = SPEC["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} does not document {status}"
    return deref(responses[str(status)], f"/paths/{_escape(path)}/{method}/responses/{status}")


def error_codes(schema: Any, pointer: str) -> set[str | None]:
    """The ``error`` values a response schema allows (``{None}`` for a success schema)."""
    schema, pointer = deref(schema, pointer)
    if "oneOf" in schema:
        return set().union(
            *(error_codes(sub, f"{pointer}/oneOf/{i}") for i, sub in enumerate(schema["oneOf"]))
        )
    error = schema.get("properties", {}).get("error", {})
    return {error["const"]} if "const" in error else {None}


def documented_answers() -> set[tuple[str, int, str | None]]:
    """Every (path, status, error code) the document allows for its POST operations."""
    answers = set()
    for path, method in OPERATIONS:
        for status in SPEC["paths"][path][method]["responses"]:
            response, pointer = documented_response(path, int(status), method)
            for media_type, media in response["content"].items():
                media_pointer = f"{pointer}/content/{_escape(media_type)}/schema"
                answers |= {
                    (path, int(status), code)
                    for code in error_codes(media["schema"], media_pointer)
                }
    return answers


def media_types_with_examples() -> list[tuple[str, dict]]:
    """(JSON pointer, media type object) of every request and response body in the document."""
    found = []
    for name, response in SPEC["components"]["responses"].items():
        for media_type, media in response.get("content", {}).items():
            found.append((f"/components/responses/{name}/content/{_escape(media_type)}", media))
    for path, method in OPERATIONS:
        body = SPEC["paths"][path][method].get("requestBody", {})
        for media_type, media in body.get("content", {}).items():
            found.append(
                (
                    f"/paths/{_escape(path)}/{method}/requestBody/content/{_escape(media_type)}",
                    media,
                )
            )
    return found


def example(response_name: str, example_name: str) -> dict[str, Any]:
    media = SPEC["components"]["responses"][response_name]["content"]["application/json"]
    return media["examples"][example_name]["value"]


def check_answer(path: str, response: Any, status: int, error: str | None) -> dict[str, Any]:
    """Validate a real answer against what the document says about ``status`` on ``path``."""
    assert response.status_code == status, response.get_data(as_text=True)
    documented, pointer = documented_response(path, status)
    assert response.mimetype in documented["content"], response.mimetype
    body = response.get_json()
    schema_pointer = f"{pointer}/content/{_escape(response.mimetype)}/schema"
    validator(schema_pointer).validate(body)
    assert body.get("error") == error
    for name, header in documented.get("headers", {}).items():
        header, header_pointer = deref(header, f"{pointer}/headers/{_escape(name)}")
        value = response.headers.get(name)
        if header.get("required"):
            assert value is not None, f"{status} answer without its documented {name} header"
        if value is not None:
            typed: Any = int(value) if header["schema"].get("type") == "integer" else value
            validator(f"{header_pointer}/schema").validate(typed)
    if "retry_after" in body:
        assert response.headers["Retry-After"] == str(body["retry_after"])
    return body


def assert_like_example(body: dict[str, Any], expected: dict[str, Any]) -> None:
    assert body.keys() == expected.keys()
    assert {k: v for k, v in body.items() if k not in VOLATILE} == {
        k: v for k, v in expected.items() if k not in VOLATILE
    }


# -- the scenarios: one per documented answer ----------------------------------------------


@dataclass(frozen=True)
class Scenario:
    path: str
    status: int
    error: str | None
    run: Callable[..., Any]
    example: tuple[str, str] | None = None


SCENARIOS: dict[str, Scenario] = {}


def scenario(
    path: str, status: int, error: str | None = None, example: tuple[str, str] | None = None
) -> Callable:
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        SCENARIOS[fn.__name__] = Scenario(path, status, error, fn, example)
        return fn

    return register


def _bug(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("a bug: /secret/path.py line 7")


def _storage_down_app(make_app: Callable) -> Any:
    return make_app(SMSCODE_STORAGE_URI=f"redis://127.0.0.1:{free_port()}/0")


# /sms/send


@scenario("/sms/send", 200, example=("CodeSent", "sent"))
def send_sent(make_app, sms_server):
    response = send(make_app().test_client(), purpose="login")
    assert len(sms_server.sent) == 1
    return response


@scenario("/sms/send", 200, example=("CodeSent", "unconfirmed"))
def send_unconfirmed(make_app, sms_server):
    sms_server.drop_next()  # read, then the connection closed without an answer
    return send(make_app().test_client(), purpose="signup")


@scenario("/sms/send", 200)
def send_form_fields_any_spelling(make_app, sms_server):
    client = make_app().test_client()
    return client.post(
        "/sms/send",
        data={
            "phone": "００８６１３８００１３８０００",
            "purpose": "reset_password",
            "captcha": "ignored",
        },
    )


@scenario("/sms/send", 200)
def send_json_suffix_media_type(make_app, sms_server):
    client = make_app().test_client()
    return client.post(
        "/sms/send",
        data=json.dumps({"phone": PHONE, "extra": [1]}),
        content_type="application/vnd.api+json",
    )


@scenario("/sms/send", 200)
def send_outside_mainland_is_masked_with_country_code(make_app, sms_server):
    client = make_app(SMSCODE_ALLOWED_REGIONS=["CN", "HK"]).test_client()
    response = send(client, "+852 5123 4567")
    assert response.get_json()["phone"] == "+852 5***4567"
    return response


@scenario("/sms/send", 400, "invalid_request", ("SendBadRequest", "missing_phone"))
def send_missing_phone(make_app, sms_server):
    return make_app().test_client().post("/sms/send", json={"purpose": "login"})


@scenario("/sms/send", 400, "invalid_request", ("SendBadRequest", "unknown_purpose"))
def send_unknown_purpose(make_app, sms_server):
    return send(make_app().test_client(), purpose="launch")


@scenario("/sms/send", 400, "invalid_request", ("SendBadRequest", "not_an_object"))
def send_body_not_an_object(make_app, sms_server):
    return make_app().test_client().post("/sms/send", json=[PHONE])


@scenario("/sms/send", 400, "invalid_request")
def send_phone_not_a_string(make_app, sms_server):
    return make_app().test_client().post("/sms/send", json={"phone": 13800138000})


@scenario("/sms/send", 400, "invalid_phone", ("SendBadRequest", "invalid_phone"))
def send_landline(make_app, sms_server):
    return send(make_app().test_client(), "010 1234 5678")


@scenario("/sms/send", 400, "invalid_phone")
def send_number_the_provider_rejects(make_app, sms_server):
    sms_server.fail_next("isv.MOBILE_NUMBER_ILLEGAL")
    return send(make_app().test_client())


@scenario("/sms/send", 400, "region_not_allowed", ("SendBadRequest", "region_not_allowed"))
def send_region_not_allowed(make_app, sms_server):
    return send(make_app().test_client(), "+852 5123 4567")


@scenario("/sms/send", 405, "method_not_allowed", ("MethodNotAllowed", "get"))
def send_wrong_methods(make_app, sms_server):
    client = make_app().test_client()
    return [
        client.open("/sms/send", method=method, json={"phone": PHONE})
        for method in ("GET", "PUT", "PATCH", "DELETE")
    ]


@scenario("/sms/send", 413, "request_too_large", ("RequestTooLarge", "too_large"))
def send_body_over_max_content_length(make_app, sms_server):
    client = make_app(MAX_CONTENT_LENGTH=200).test_client()
    return client.post("/sms/send", json={"phone": PHONE, "padding": "x" * 300})


@scenario("/sms/send", 413, "request_too_large")
def send_form_field_over_max_form_memory_size(make_app, sms_server):
    client = make_app(MAX_FORM_MEMORY_SIZE=100).test_client()
    return client.post(
        "/sms/send",
        data={"phone": PHONE, "purpose": "x" * 200, "file": (io.BytesIO(b"x"), "x.txt")},
    )


@scenario("/sms/send", 413, "request_too_large")
def send_over_max_form_parts(make_app, sms_server):
    client = make_app(MAX_FORM_PARTS=2).test_client()
    return client.post(
        "/sms/send", data={"phone": PHONE, "a": "1", "b": "2", "file": (io.BytesIO(b"x"), "x.txt")}
    )


@scenario("/sms/send", 429, "throttled", ("SendThrottled", "cooldown"))
def send_resend_cooldown(make_app, sms_server):
    client = make_app().test_client()
    assert send(client).status_code == 200
    return send(client, "+86 138 0013 8000", purpose="signup")  # same phone, any purpose


@scenario("/sms/send", 429, "throttled")
def send_hourly_cap(make_app, sms_server):
    client = make_app(
        SMSCODE_RESEND_INTERVAL_SECONDS=0, SMSCODE_PHONE_LIMITS="1/hour"
    ).test_client()
    assert send(client).status_code == 200
    return send(client)


@scenario("/sms/send", 429, "throttled", ("SendThrottled", "address"))
def send_ip_limit(make_app, sms_server):
    client = make_app(SMSCODE_IP_SEND_LIMITS="1/minute").test_client()
    assert send(client, "13800138000").status_code == 200
    return send(client, "13900139000")


@scenario("/sms/send", 429, "throttled", ("SendThrottled", "provider_flow_control"))
def send_provider_flow_control(make_app, sms_server):
    sms_server.fail_next("isv.BUSINESS_LIMIT_CONTROL", "触发小时级流控Permits:5")
    return send(make_app().test_client())


@scenario("/sms/send", 500, "internal_error", ("InternalError", "internal_error"))
def send_unexpected_error(make_app, sms_server):
    app = make_app()
    get_service(app).store.reserve_send = _bug  # an unexpected error inside the package
    return send(app.test_client())


@scenario("/sms/send", 502, "provider_error", ("ProviderError", "provider_error"))
def send_provider_error(make_app, sms_server):
    sms_server.fail_next("isp.SYSTEM_ERROR")
    return send(make_app().test_client())


@scenario("/sms/send", 503, "storage_unavailable", ("StorageUnavailable", "storage_unavailable"))
def send_storage_down(make_app, sms_server):
    response = send(_storage_down_app(make_app).test_client())
    assert sms_server.sent == []
    return response


# Idempotency-Key and the pre-send hook (H-guard)


@scenario("/sms/send", 200)
def send_replayed_by_idempotency_key(make_app, sms_server):
    client = make_app().test_client()
    assert send(client, headers={"Idempotency-Key": "k-1"}).status_code == 200
    response = send(client, "+86 138 0013 8000", headers={"Idempotency-Key": "k-1"})
    assert response.headers["Idempotent-Replayed"] == "true" and len(sms_server.sent) == 1
    return response


@scenario("/sms/send", 429, "throttled")
def send_refusal_replayed_by_idempotency_key(make_app, sms_server):
    client = make_app().test_client()
    send(client)
    send(client, headers={"Idempotency-Key": "k-2"})
    response = send(client, headers={"Idempotency-Key": "k-2"})
    assert response.headers["Idempotent-Replayed"] == "true"
    return response


@scenario("/sms/send", 400, "invalid_request")
def send_malformed_idempotency_key(make_app, sms_server):
    response = send(make_app().test_client(), headers={"Idempotency-Key": "a key"})
    assert response.get_json()["field"] == "Idempotency-Key"
    return response


@scenario("/sms/send", 400, "challenge_required")
def send_refused_by_the_pre_send_hook(make_app, sms_server):
    app = make_app(SMSCODE_PRE_SEND_HOOK=lambda request, phone, purpose: False)
    return send(app.test_client())


@scenario("/sms/send", 422, "idempotency_key_reused", ("IdempotencyKeyReused", "reused"))
def send_idempotency_key_reused(make_app, sms_server):
    client = make_app().test_client()
    send(client, headers={"Idempotency-Key": "k-3"})
    return send(client, "13900139000", headers={"Idempotency-Key": "k-3"})


@scenario("/sms/send", 409, "request_in_progress", ("RequestInProgress", "in_progress"))
def send_while_the_same_key_is_running(make_app, sms_server):
    import threading
    import time

    app = make_app(SMSCODE_IDEMPOTENCY_WAIT_SECONDS=0)
    sms_server.stall_next(1.0)  # the first request waits at the provider
    first = threading.Thread(
        target=lambda: send(app.test_client(), headers={"Idempotency-Key": "k-4"})
    )
    first.start()
    deadline = time.monotonic() + 5
    while not sms_server.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    response = send(app.test_client(), headers={"Idempotency-Key": "k-4"})
    first.join()
    return response


# /sms/verify


@scenario("/sms/verify", 200, example=("PhoneVerified", "verified"))
def verify_ok(make_app, sms_server):
    client = make_app().test_client()
    send(client)
    return verify(client, sms_server.last_code(PHONE), phone="+86 138 0013 8000")


@scenario("/sms/verify", 200)
def verify_form_fields(make_app, sms_server):
    client = make_app().test_client()
    send(client, purpose="signup")
    return client.post(
        "/sms/verify",
        data={"phone": PHONE, "purpose": "signup", "code": sms_server.last_code(PHONE)},
    )


@scenario("/sms/verify", 400, "invalid_request", ("VerifyBadRequest", "malformed_code"))
def verify_malformed_code(make_app, sms_server):
    client = make_app().test_client()
    send(client)
    return verify(client, "１２３４５６")


@scenario("/sms/verify", 400, "invalid_request")
def verify_missing_code(make_app, sms_server):
    return make_app().test_client().post("/sms/verify", json={"phone": PHONE})


@scenario("/sms/verify", 400, "invalid_phone", ("VerifyBadRequest", "invalid_phone"))
def verify_invalid_phone(make_app, sms_server):
    return verify(make_app().test_client(), "123456", phone="12345")


@scenario("/sms/verify", 400, "region_not_allowed", ("VerifyBadRequest", "region_not_allowed"))
def verify_region_not_allowed(make_app, sms_server):
    return verify(make_app().test_client(), "123456", phone="+44 7911 123456")


@scenario("/sms/verify", 400, "invalid_code", ("VerifyBadRequest", "invalid_code"))
def verify_wrong_code(make_app, sms_server):
    client = make_app().test_client()
    send(client)
    return verify(client, wrong(sms_server.last_code(PHONE)))


@scenario("/sms/verify", 400, "invalid_code", ("VerifyBadRequest", "last_attempt"))
def verify_last_attempt(make_app, sms_server):
    client = make_app(SMSCODE_MAX_ATTEMPTS=2).test_client()
    send(client)
    code = sms_server.last_code(PHONE)
    assert verify(client, wrong(code)).get_json()["attempts_left"] == 1
    return verify(client, wrong(code))


@scenario("/sms/verify", 400, "code_expired")
def verify_code_replaced_by_a_resend(make_app, sms_server):
    client = make_app(SMSCODE_RESEND_INTERVAL_SECONDS=0).test_client()
    send(client)
    first = sms_server.last_code(PHONE)
    while sms_server.last_code(PHONE) == first:  # a new code differs but for 1 in 10**6
        assert send(client).status_code == 200
    return verify(client, first)  # a replaced code is dead, not a guess


@scenario("/sms/verify", 400, "code_expired", ("VerifyBadRequest", "code_expired"))
def verify_used_code(make_app, sms_server):
    client = make_app().test_client()
    send(client)
    code = sms_server.last_code(PHONE)
    assert verify(client, code).status_code == 200
    return verify(client, code)


@scenario("/sms/verify", 400, "code_expired")
def verify_never_sent(make_app, sms_server):
    return verify(make_app().test_client(), "123456")


@scenario("/sms/verify", 405, "method_not_allowed", ("MethodNotAllowed", "get"))
def verify_wrong_methods(make_app, sms_server):
    client = make_app().test_client()
    return [
        client.open("/sms/verify", method=method) for method in ("GET", "PUT", "PATCH", "DELETE")
    ]


@scenario("/sms/verify", 413, "request_too_large", ("RequestTooLarge", "too_large"))
def verify_body_over_max_content_length(make_app, sms_server):
    client = make_app(MAX_CONTENT_LENGTH=200).test_client()
    return client.post("/sms/verify", data={"phone": PHONE, "code": "1" * 300})


CROSS_SITE = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}


@scenario("/sms/send", 403, "cross_site_request", ("CrossSiteRequest", "cross_site"))
def send_form_from_another_site(make_app, sms_server):
    client = make_app().test_client()
    return [
        client.post("/sms/send", data={"phone": PHONE}, headers=CROSS_SITE),
        client.post("/sms/send", data={"phone": PHONE}, headers={"Origin": "https://evil.example"}),
    ]


@scenario("/sms/verify", 403, "cross_site_request", ("CrossSiteRequest", "cross_site"))
def verify_form_from_another_site(make_app, sms_server):
    client = make_app().test_client()
    return client.post("/sms/verify", data={"phone": PHONE, "code": "123456"}, headers=CROSS_SITE)


@scenario("/sms/verify", 429, "too_many_attempts", ("VerifyTooManyRequests", "too_many_attempts"))
def verify_too_many_attempts(make_app, sms_server):
    client = make_app(SMSCODE_MAX_ATTEMPTS=2).test_client()
    send(client)
    code = sms_server.last_code(PHONE)
    verify(client, wrong(code))
    verify(client, wrong(code))
    response = verify(client, code)  # the right code no longer helps
    assert 0 < response.get_json()["retry_after"] <= 900
    return response


@scenario("/sms/verify", 429, "throttled", ("VerifyTooManyRequests", "address"))
def verify_ip_limit(make_app, sms_server):
    client = make_app(SMSCODE_IP_VERIFY_LIMITS="2/minute").test_client()
    verify(client, "123456")
    verify(client, "123456")
    return verify(client, "123456")


@scenario("/sms/verify", 500, "internal_error", ("InternalError", "internal_error"))
def verify_unexpected_error(make_app, sms_server):
    app = make_app()
    client = app.test_client()
    send(client)
    get_service(app).store.check_code = _bug
    return verify(client, sms_server.last_code(PHONE))


@scenario("/sms/verify", 503, "storage_unavailable", ("StorageUnavailable", "storage_unavailable"))
def verify_storage_down(make_app, sms_server):
    return verify(_storage_down_app(make_app).test_client(), "123456")


# -- the document itself -------------------------------------------------------------------


def test_document_is_valid_openapi():
    assert SPEC["openapi"].startswith("3.")
    validate_openapi(SPEC)


def test_document_version_is_the_package_version():
    assert SPEC["info"]["version"] == importlib.metadata.version("flask-smscode")


def test_operations_are_the_blueprints():
    assert sorted(OPERATIONS) == [
        ("/sms/send", "options"),  # the CORS preflight (issue 15)
        ("/sms/send", "post"),
        ("/sms/verify", "options"),
        ("/sms/verify", "post"),
    ]
    rules = {rule.rule for rule in _app_rules()}
    assert {path for path, _ in OPERATIONS} <= rules


def _app_rules() -> list:
    from flask import Flask

    from flask_smscode import sms_bp

    app = Flask("rules")
    app.config.update(SECRET_KEY="x", TESTING=True)
    app.register_blueprint(sms_bp)
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("smscode.")]


def test_every_body_has_examples_that_match_its_schema():
    checked = 0
    for pointer, media in media_types_with_examples():
        examples = media.get("examples", {})
        if "/components/responses/" in pointer:
            assert examples, f"{pointer} has no example"
        check = validator(f"{pointer}/schema")
        for name, item in examples.items():
            check.validate(item["value"])
            checked += 1
    assert checked >= 30


def test_error_enum_covers_every_error_the_package_can_answer():
    """A new SmsCodeError (anywhere in the package) cannot go undocumented."""
    enum = SPEC["components"]["schemas"]["ErrorCode"]["enum"]
    assert len(enum) == len(set(enum))
    classes = _package_error_classes()
    codes = {cls.code for cls in classes}
    assert PYTHON_ONLY <= codes  # the exclusion is still real
    assert set(enum) == (codes - PYTHON_ONLY) | HTTP_LEVEL
    assert set(blueprint_module._HTTP_ERROR_CODES.values()) <= set(enum) | UNREACHABLE
    # and the Error schema's `error` is that enum
    error_property = SPEC["components"]["schemas"]["Error"]["properties"]["error"]
    assert error_property == {"$ref": "#/components/schemas/ErrorCode"}


def _package_error_classes() -> list[type[SmsCodeError]]:
    found, todo = [], [SmsCodeError]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("flask_smscode"):
                found.append(sub)
    return found


def test_documented_status_of_each_error_is_its_class_status():
    statuses: dict[str, set[int]] = {}
    for _, status, code in documented_answers():
        if code is not None:
            statuses.setdefault(code, set()).add(status)
    for cls in _package_error_classes():
        if cls.code not in PYTHON_ONLY:
            assert statuses.get(cls.code) == {cls.status}, cls.__name__
    assert statuses["request_too_large"] == {413}
    assert statuses["internal_error"] == {500}
    enum = set(SPEC["components"]["schemas"]["ErrorCode"]["enum"])
    assert set(statuses) == enum  # every documented code is an answer of some operation


def test_documented_defaults_are_the_configs():
    schemas = SPEC["components"]["schemas"]
    assert schemas["Purpose"]["default"] == "login"
    assert tuple(schemas["Purpose"]["examples"]) == tuple(DEFAULTS["SMSCODE_PURPOSES"])
    assert schemas["SendResult"]["properties"]["expires_in"]["maximum"] == MAX_CODE_TTL_SECONDS
    sent = example("CodeSent", "sent")
    assert sent["expires_in"] == DEFAULTS["SMSCODE_CODE_TTL_SECONDS"]
    assert sent["resend_in"] == DEFAULTS["SMSCODE_RESEND_INTERVAL_SECONDS"]
    verified = example("PhoneVerified", "verified")
    assert verified["token_expires_in"] == DEFAULTS["SMSCODE_TOKEN_TTL_SECONDS"]
    assert verified["phone"] == E164


def test_scenarios_cover_exactly_the_documented_answers():
    provoked = {(s.path, s.status, s.error) for s in SCENARIOS.values()}
    assert provoked == documented_answers()
    for s in SCENARIOS.values():
        if s.example:
            response_name, example_name = s.example
            assert (
                example_name
                in SPEC["components"]["responses"][response_name]["content"]["application/json"][
                    "examples"
                ]
            )


# -- the code against the document ---------------------------------------------------------


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_answer_is_as_documented(name, make_app, sms_server):
    s = SCENARIOS[name]

    def english_app(*args, **config):  # the document's examples are in English
        return make_app(*args, **{"SMSCODE_DEFAULT_LANGUAGE": "en", **config})

    result = s.run(english_app, sms_server)
    for response in result if isinstance(result, list) else [result]:
        body = check_answer(s.path, response, s.status, s.error)
        if s.example:
            assert_like_example(body, example(*s.example))
        text = response.get_data(as_text=True)
        assert "Traceback" not in text and "/secret/path.py" not in text


@pytest.mark.parametrize(
    ("path", "media_type", "name"),
    [
        (path, media_type, name)
        for path, method in OPERATIONS
        if method == "post"
        for media_type, media in SPEC["paths"][path][method]["requestBody"]["content"].items()
        for name in media.get("examples", {})
    ],
)
def test_request_examples_are_accepted(make_app, sms_server, path, media_type, name):
    value = SPEC["paths"][path]["post"]["requestBody"]["content"][media_type]["examples"][name][
        "value"
    ]
    # Test numbers: no SMS, a fixed code, every other rule as for a real number.
    client = make_app(
        SMSCODE_TEST_NUMBERS={"13800138000": "123456", "13900139000": "042917"}
    ).test_client()
    if path == "/sms/verify":
        send(client, value["phone"], purpose=value.get("purpose"))
    if media_type == "application/json":
        response = client.post(path, json=value)
    else:
        response = client.post(path, data=value, content_type=media_type)
    check_answer(path, response, 200, None)


def test_options_is_json(client):
    """OPTIONS is answered as info.description says: JSON, with the Allow header."""
    assert "`OPTIONS` answers" in SPEC["info"]["description"]
    for path, _ in OPERATIONS:
        response = client.options(path)
        assert response.status_code == 200
        assert response.get_json() == {"ok": True, "methods": ["POST", "OPTIONS"]}
        assert response.headers["Allow"] == "POST, OPTIONS"
        assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("origin", ["https://app.example.com", "https://evil.example", None])
def test_the_preflight_is_as_documented(make_app, sms_server, origin):
    """OPTIONS (issue 15): the documented body and headers, the CORS ones only for a trusted
    origin's preflight."""
    client = make_app(SMSCODE_TRUSTED_ORIGINS=["https://app.example.com"]).test_client()
    headers = {"Access-Control-Request-Method": "POST"}
    if origin:
        headers["Origin"] = origin
    for path in ("/sms/send", "/sms/verify"):
        response = client.options(path, headers=headers)
        documented, pointer = documented_response(path, 200, "options")
        media = documented["content"]["application/json"]
        validator(f"{pointer}/content/application~1json/schema").validate(response.get_json())
        assert response.get_json() == media["examples"]["preflight"]["value"]
        for name, header in documented["headers"].items():
            header, header_pointer = deref(header, f"{pointer}/headers/{name}")
            if name not in response.headers:
                assert not header.get("required"), name
                continue
            validator(f"{header_pointer}/schema").validate(response.headers[name])
        cors = {k for k in response.headers.keys() if k.startswith("Access-Control-")}
        if origin == "https://app.example.com":
            assert response.headers["Access-Control-Allow-Origin"] == origin
            assert cors <= set(documented["headers"])
        else:
            assert cors == set()
