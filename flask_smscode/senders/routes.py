"""Senders per destination: ``SMSCODE_SENDER_ROUTES`` picks the senders by the number's
country calling code, and each route fails over in its own order.

::

    SMSCODE_SENDER_ROUTES = {
        "86": ["aliyun", "tencent"],  # mainland China: Alibaba first, Tencent if it is down
        "*": ["tencent"],             # every other country calling code
    }

**Keys** are country calling codes as digits without ``+`` (``"86"``, ``"852"``, ``"1"``)
or ``"*"`` for every code without a route of its own. **Values** are one sender or a list
in failover order, written exactly as ``SMSCODE_SENDER`` entries (a registered kind, a name
in ``SMSCODE_SENDERS_CONFIG``, a dotted path; a comma-separated string works too).

**How it relates to SMSCODE_SENDER.** With routes set, ``SMSCODE_SENDER`` is the ``"*"``
route unless ``"*"`` is given (then ``"*"`` wins and ``SMSCODE_SENDER`` is not used to
send). Left unset, it is no route at all: then the routes must cover every region of
``SMSCODE_ALLOWED_REGIONS``, or start-up fails naming ``SMSCODE_SENDER_ROUTES`` — the
default console sender never silently becomes the fallback of a production app.

**Built once.** A sender named in several routes is one object (one SDK client, one
connection pool); ``build_sender`` returns every distinct name, which are the only sender
labels of logs, metrics and ``flask smscode status``.

**Vendor-blind.** This module reads only the number: which failures let a route move on is
decided by :func:`~flask_smscode.senders.chain.send_in_order` (only
:class:`~flask_smscode.errors.ProviderUnavailable`), and which failures are definite by each
vendor's own table (``aliyun/outcomes.py``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import phonenumbers

from flask_smscode.senders.base import Sender, SendReceipt, send_seconds
from flask_smscode.senders.chain import send_in_order

FALLBACK = "*"
Route = tuple[tuple[str, Sender], ...]


def calling_code(phone: str) -> str | None:
    """The country calling code of an E.164 number (``"+8613800138000"`` → ``"86"``), or
    ``None`` for text that is not one. Calling codes are prefix-free, so the first known
    1-3 digit prefix is the code (the numbers reaching a sender are already normalised)."""
    digits = phone[1:] if phone.startswith("+") else ""
    if not (digits.isascii() and digits.isdigit()):
        return None
    for size in (1, 2, 3):
        if int(digits[:size]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return digits[:size]
    return None


def is_calling_code(key: str) -> bool:
    """Whether ``key`` is a country calling code phonenumbers knows, as digits."""
    return (
        key.isascii()
        and key.isdigit()
        and not key.startswith("0")
        and int(key) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE
    )


def region_calling_code(region: str) -> str:
    """The calling code of an ISO 3166 region (``"HK"`` → ``"852"``)."""
    return str(phonenumbers.country_code_for_region(region))


class RoutingSender:
    """Sends through the route of the number's country calling code (else ``"*"``), each
    route a list of (name, sender) tried in order by the one failover rule.

    ``send_seconds`` is the longest route's sum: a send may wait on every sender of its
    route in turn, and the Idempotency-Key claim must outlast the slowest route.
    """

    def __init__(self, routes: Mapping[str, Sequence[tuple[str, Sender]]]) -> None:
        if not routes or any(not senders for senders in routes.values()):
            raise ValueError("RoutingSender needs at least one route, none of them empty")
        self.routes: dict[str, Route] = {key: tuple(senders) for key, senders in routes.items()}
        self.fallback: Route | None = self.routes.get(FALLBACK)
        names: dict[str, None] = {}
        for route in self.routes.values():
            names.update((name, None) for name, _ in route)
        self.names = tuple(names)
        self.send_seconds = max(
            sum(send_seconds(sender) for _, sender in route) for route in self.routes.values()
        )

    def route_for(self, phone: str) -> Route:
        """The senders for ``phone``: its calling code's route, else ``"*"``. Start-up
        checked that every allowed region has one, so a missing route is a bug."""
        code = calling_code(phone)
        route = self.routes.get(code) if code is not None else None
        route = route or self.fallback
        if route is None:
            raise LookupError(f"SMSCODE_SENDER_ROUTES has no route for calling code {code}")
        return route

    def send(self, phone: str, code: str, purpose: str, *, out_id: str) -> SendReceipt:
        return send_in_order(self.route_for(phone), phone, code, purpose, out_id=out_id)
