"""``Idempotency-Key`` on ``POST /sms/send`` (IETF draft-ietf-httpapi-idempotency-key-header,
with Stripe's semantics): a retry of a send whose answer was lost gets that answer again and
sends no second SMS.

- The key is stored as an HMAC under the app's secret (never in clear, never logged; logs
  carry :func:`log_id`, 8 hex characters of it), for the code's lifetime.
- What is compared is the *normalised* request, the E.164 phone and the purpose (as an
  HMAC, the fingerprint): a client library that re-serialises its JSON, or switches between
  JSON and form fields, is still sending the same request.
- An answer is recorded once the request has passed its client's per-IP budget and reached
  the store's decision: a 200 or any refusal from then on (the phone's and the guard's 429
  throttles, a provider's 400) is replayed. A request refused before it (400
  invalid_request, invalid_phone, 403 cross_site_request) records nothing: running it again
  gives the same answer anyway (as Stripe does for validation errors). Nor does a request
  refused by the per-IP budget (429): otherwise each fresh key of a client past its budget
  would store a record, and the store would grow with the attacker's request rate instead
  of with the limits (issue 15); a retry with that key is simply decided again. A fault that
  sent nothing (502 provider_error, 503 storage_unavailable) releases the key, so a retry
  can send.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import TYPE_CHECKING, Any

from flask_smscode.errors import InvalidRequest, SmsCodeError

if TYPE_CHECKING:
    from flask_smscode.stores import StoredAnswer

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# Printable ASCII without the space: what a UUID, a ULID or any token a client makes is.
_KEY = re.compile(rf"[\x21-\x7e]{{1,{MAX_KEY_LENGTH}}}")
_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]{0,31}")
MAX_ANSWER_CHARS = 50  # with its expiry, a stored answer stays within a 64-byte hash field


def check_key(raw: object) -> str:
    """The header's value if well formed, else ``invalid_request`` naming the header."""
    if not isinstance(raw, str) or not _KEY.fullmatch(raw):
        raise InvalidRequest(
            key="invalid_request.idempotency_key", field=HEADER, params={"max": MAX_KEY_LENGTH}
        )
    return raw


def key_id(secret: bytes, key: str) -> str:
    """The stored name of a key: 128 bits of its HMAC."""
    return hmac.new(secret, b"idempotency-key\0" + key.encode(), hashlib.sha256).hexdigest()[:32]


def fingerprint(secret: bytes, phone: str, purpose: str) -> str:
    """The normalised request, as an HMAC (64 bits: 16 hex characters)."""
    digest = hmac.new(
        secret, f"idempotency-body\0{phone}\0{purpose}".encode(), hashlib.sha256
    ).hexdigest()
    return digest[:16]


def log_id(stored_id: str) -> str:
    """What logs show of a key: enough to correlate two lines, nothing to replay it."""
    return stored_id[:8]


def answer_of_error(error: SmsCodeError) -> StoredAnswer:
    """The recorded form of a refusal: code, message variant and retry_after."""
    code = error.code if _IDENTIFIER.fullmatch(error.code) else "error"
    variant = error.key[len(error.code) + 1 :] if error.key.startswith(error.code + ".") else ""
    if not re.fullmatch(r"[a-z0-9_.:]{0,24}", variant):
        variant = ""
    from flask_smscode.stores import StoredAnswer  # not on the blueprint's import line

    return StoredAnswer(error.status, code, variant, error.retry_after)


def error_for(answer: StoredAnswer, refusal_key: Any) -> SmsCodeError:
    """The refusal a stored answer replays: the package's class for its code, with its
    message key and retry_after (rendered again, in the retrying request's language)."""
    key = answer.code if not answer.key else f"{answer.code}.{answer.key}"
    if answer.key.startswith("r:"):  # a store refusal: its message key by refusal kind
        key = refusal_key(answer.key[2:])
    cls = _class_of(answer.code)
    error = cls.__new__(cls)
    SmsCodeError.__init__(error, key=key, retry_after=answer.n1)
    error.replayed = True
    if cls is SmsCodeError or cls.status != answer.status:
        error.replayed_status = answer.status
    return error


def _class_of(code: str) -> type[SmsCodeError]:
    todo: list[type[SmsCodeError]] = [SmsCodeError]
    while todo:
        cls = todo.pop()
        if cls.code == code and cls is not SmsCodeError:
            return cls
        todo.extend(cls.__subclasses__())
    return SmsCodeError
