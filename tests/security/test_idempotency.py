"""Idempotent sends: an ``Idempotency-Key`` makes a retried ``POST /sms/send`` answer the first
answer and send nothing, on every store. Each test fails if its defence is removed: without the
key's record a retry is a second send (a 429 cooldown or a second SMS), without the fingerprint
another phone's request gets a stranger's answer, without the claim racing retries send twice.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from flask_smscode import get_service
from tests.helpers import PHONE
from tests.security.support import OTHER_PHONE, RELAXED, session
from tests.servers.live_server import live_server

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.redis_cluster),
        pytest.param("sentinel", marks=pytest.mark.redis_sentinel),
    ]
)
def store_uri(request: pytest.FixtureRequest) -> str:
    """Every store, Cluster included: there a send is one script call per slot (claim,
    client, phone, guard), a path of its own."""
    if request.param == "memory":
        return "memory://"
    if request.param in ("cluster", "sentinel"):
        return str(request.getfixturevalue(f"redis_{request.param}").uri)
    return str(request.getfixturevalue("redis_url"))


def keyed_send(
    client: Any, key: str, phone: str = PHONE, purpose: str | None = None, **kwargs: Any
) -> Any:
    body = {"phone": phone} if purpose is None else {"phone": phone, "purpose": purpose}
    return client.post("/sms/send", json=body, headers={HEADER: key}, **kwargs)


def error(response: Any) -> str:
    body = response.get_json()
    assert body["ok"] is False and body["message"], body
    return str(body["error"])


def test_a_retry_with_the_same_key_gets_the_first_answer_and_sends_nothing(make_app, sms_server):
    client = make_app().test_client()  # default cooldown: a second real send would be a 429
    key = str(uuid.uuid4())
    first = keyed_send(client, key)
    assert first.status_code == 200 and REPLAYED not in first.headers
    # The same request in another spelling, and as form fields: the normalised request is
    # what is compared (E.164 phone and purpose), not the bytes of the body.
    again = [
        keyed_send(client, key, "+86 138 0013 8000"),
        keyed_send(client, key, PHONE, "login"),
        client.post("/sms/send", data={"phone": "008613800138000"}, headers={HEADER: key}),
    ]
    for response in again:
        assert response.status_code == 200
        assert response.get_json() == first.get_json()
        assert response.headers[REPLAYED] == "true"
        assert response.headers["Cache-Control"] == "no-store"
    assert len(sms_server.sent) == 1
    # Without the key the same request is a new send, refused by the cooldown.
    assert client.post("/sms/send", json={"phone": PHONE}).status_code == 429


def test_the_same_key_with_another_request_is_422_and_sends_nothing(make_app, sms_server):
    client = make_app(**RELAXED).test_client()
    key = "order-7f3a"
    assert keyed_send(client, key).status_code == 200
    for phone, purpose in ((OTHER_PHONE, None), (PHONE, "signup")):
        response = keyed_send(client, key, phone, purpose)
        assert response.status_code == 422 and error(response) == "idempotency_key_reused"
        assert REPLAYED not in response.headers
    assert [m.phones for m in sms_server.sent] == [[PHONE]]
    with make_app_context(client):
        assert get_service().status(OTHER_PHONE).sends == {"1000 per 1 hour": 0}


def make_app_context(client: Any) -> Any:
    return client.application.app_context()


def test_a_refusal_is_replayed_too(make_app, sms_server):
    """A 429 reached in the store is the key's answer: replayed even once the phone could get a
    code again (here after an operator reset), while a new key sends."""
    app = make_app()
    client = app.test_client()
    assert client.post("/sms/send", json={"phone": PHONE}).status_code == 200
    refused = keyed_send(client, "retry-me")
    assert refused.status_code == 429 and error(refused) == "throttled"
    with app.app_context():
        get_service().reset(PHONE)
    replayed = keyed_send(client, "retry-me")
    assert replayed.status_code == 429 and replayed.headers[REPLAYED] == "true"
    assert replayed.get_json() == refused.get_json()
    assert replayed.headers["Retry-After"] == refused.headers["Retry-After"]
    assert keyed_send(client, "a-new-key").status_code == 200
    assert len(sms_server.sent) == 2


@pytest.mark.parametrize(
    "key", ["", " ", "a b", "tab\there", "x" * 256, "caf\u00e9", "\x7f", "line\nbreak"]
)
def test_malformed_keys_are_400_naming_the_header_and_write_nothing(make_app, sms_server, key):
    app = make_app()
    client = app.test_client()
    environ = {"HTTP_IDEMPOTENCY_KEY": key}  # raw: the test client would refuse some of them
    response = client.post("/sms/send", json={"phone": PHONE}, environ_overrides=environ)
    assert response.status_code == 400 and error(response) == "invalid_request"
    assert response.get_json()["field"] == HEADER
    assert sms_server.sent == []
    with app.app_context():
        status = get_service().status(PHONE)
    assert status.cooldown == 0 and status.code_ttl == 0


@pytest.mark.parametrize("key", ["1", "x" * 255, str(uuid.uuid4()), "!~#$%&'*+-.^_`|"])
def test_well_formed_keys_are_accepted(make_app, sms_server, key):
    client = make_app().test_client()
    response = keyed_send(client, key)
    assert response.status_code == 200, response.get_json()
    assert REPLAYED not in response.headers
    # the key was taken: a repeat gets the first answer and sends no second SMS
    again = keyed_send(client, key)
    assert again.status_code == 200 and again.headers[REPLAYED] == "true"
    assert again.get_json() == response.get_json()
    assert len(sms_server.messages_to(PHONE)) == 1


def test_a_provider_failure_releases_the_key_so_a_retry_sends(make_app, sms_server):
    client = make_app().test_client()
    sms_server.fail_next("isp.SYSTEM_ERROR")
    failed = keyed_send(client, "k-502")
    assert failed.status_code == 502 and error(failed) == "provider_error"
    retried = keyed_send(client, "k-502")
    assert retried.status_code == 200 and REPLAYED not in retried.headers
    assert len(sms_server.sent) == 1
    assert keyed_send(client, "k-502").headers[REPLAYED] == "true"


def test_a_provider_refusal_is_recorded_and_replayed(make_app, sms_server):
    """A definite 4xx from the provider (a number it does not serve) is an answer, not a fault."""
    client = make_app().test_client()
    sms_server.fail_next("isv.MOBILE_NUMBER_ILLEGAL")
    first = keyed_send(client, "k-400")
    assert first.status_code == 400 and error(first) == "invalid_phone"
    again = keyed_send(client, "k-400")
    assert again.status_code == 400 and again.get_json() == first.get_json()
    assert again.headers[REPLAYED] == "true"
    assert sms_server.sent == []


def test_twenty_racing_requests_with_one_key_send_one_sms(make_app, sms_server):
    """The first request claims the key atomically with its reservation; the others wait for
    its answer (the provider is made slow, so they really do) and replay it."""
    app = make_app(**RELAXED)
    sms_server.stall_next(0.5)  # the SendSms answer comes 0.5 s late (within the timeout)
    threads = 20
    barrier = threading.Barrier(threads)

    def post(_: int) -> Any:
        with session() as s:
            barrier.wait()
            return s.post(
                f"{base}/sms/send", json={"phone": PHONE}, headers={HEADER: "race-key"}, timeout=30
            )

    with live_server(app) as base, ThreadPoolExecutor(threads) as pool:
        responses = list(pool.map(post, range(threads)))
    assert [r.status_code for r in responses] == [200] * threads
    assert sum(r.headers.get(REPLAYED) == "true" for r in responses) == threads - 1
    assert len({r.text for r in responses}) == 1
    assert len(sms_server.sent) == 1


def test_a_duplicate_that_cannot_wait_gets_409_with_retry_after(make_app, sms_server):
    app = make_app(SMSCODE_IDEMPOTENCY_WAIT_SECONDS=0, **RELAXED)
    sms_server.stall_next(1.0)
    with live_server(app) as base, session() as s, ThreadPoolExecutor(1) as pool:
        first = pool.submit(
            s.post,
            f"{base}/sms/send",
            json={"phone": PHONE},
            headers={HEADER: "slow-key"},
            timeout=30,
        )
        deadline = time.monotonic() + 5
        while not sms_server.requests and time.monotonic() < deadline:
            time.sleep(0.02)  # the first request is at the provider now
        with session() as other:
            second = other.post(
                f"{base}/sms/send", json={"phone": PHONE}, headers={HEADER: "slow-key"}, timeout=30
            )
        assert first.result().status_code == 200
    assert second.status_code == 409
    assert second.json()["error"] == "request_in_progress"
    assert int(second.headers["Retry-After"]) == second.json()["retry_after"] >= 1
    assert len(sms_server.sent) == 1


def test_the_key_is_never_logged_only_a_short_hash(make_app, sms_server, secrets_watch):
    key = "secret-key-" + uuid.uuid4().hex
    client = make_app().test_client()
    keyed_send(client, key)
    keyed_send(client, key)
    logs = secrets_watch.logs
    assert logs and not any(key in line for line in logs)
    tagged = [line for line in logs if "idempotency_key=" in line]
    assert len(tagged) == 2
    assert {line.split("idempotency_key=")[1].split()[0] for line in tagged} != {key}
    assert any("replayed=True" in line for line in tagged)


def test_the_python_api_takes_the_key_too(make_app, sms_server):
    app = make_app()
    with app.app_context():
        service = get_service()
        first = service.send(PHONE, idempotency_key="py-1")
        again = service.send("+86 138 0013 8000", idempotency_key="py-1")
    assert not first.replayed and again.replayed
    assert again.as_json() == first.as_json()
    assert len(sms_server.sent) == 1
