"""The extension: ``SmsCode`` for app factories, ``init_app``, and the Python API.

Per-app state lives in ``app.extensions["smscode"]`` (the service), never on the extension
object, which is why one ``SmsCode()`` serves any number of apps. The module-level
functions reach the current app's service through ``current_app``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app
from flask.sansio.app import App

if TYPE_CHECKING:
    # Imported when an app is set up (init_app), not with the blueprint: `from
    # flask_smscode import sms_bp` is an app's import line, and the service pulls in the
    # settings, the stores and the senders (measured in bench/: the import-time figure).
    from flask_smscode.core.deliveries import Delivery
    from flask_smscode.core.results import SendResult, VerifyResult
    from flask_smscode.core.service import SmsCodeService
    from flask_smscode.tokens import VerifiedPhone

__all__ = [
    "EXTENSION_KEY",
    "SmsCode",
    "check_token",
    "delivery_status",
    "get_service",
    "init_app",
    "send_code",
    "verify_code",
]

EXTENSION_KEY = "smscode"


class SmsCode:
    """The extension object, for app factories::

    smscode = SmsCode()
    def create_app():
        app = Flask(__name__); app.config.from_object(...)
        smscode.init_app(app)          # Python API only
        app.register_blueprint(sms_bp)  # plus the HTTP endpoints
    """

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> SmsCodeService:
        return init_app(app)

    # The Python API, through current_app (the same as the module-level functions).
    def send_code(self, phone: str, purpose: str = "login", **kwargs: Any) -> SendResult:
        return send_code(phone, purpose, **kwargs)

    def verify_code(
        self, phone: str, code: str, purpose: str = "login", **kwargs: Any
    ) -> VerifyResult:
        return verify_code(phone, code, purpose, **kwargs)

    def check_token(self, token: str, purpose: str | None = None, **kwargs: Any) -> VerifiedPhone:
        return check_token(token, purpose, **kwargs)


def init_app(app: App) -> SmsCodeService:
    """Read and validate the app's settings once, and build its service (once per app)."""
    service = app.extensions.get(EXTENSION_KEY)
    if service is None:
        from flask_smscode.core.service import SmsCodeService
        from flask_smscode.core.settings import AppSettings
        from flask_smscode.events import ensure_log_handler

        ensure_log_handler()  # an app without a logging config still shows the INFO lines
        service = SmsCodeService(
            sections=AppSettings.from_config(app.config), debug=app.debug, testing=app.testing
        )
        app.extensions[EXTENSION_KEY] = service
    return service


def get_service(app: App | None = None) -> SmsCodeService:
    """The service of ``app`` (default: the current app; outside an app context Flask's own
    "Working outside of application context" RuntimeError says what is missing)."""
    if app is None:
        proxy: Any = current_app  # typed as the app class; the proxy's method is untyped
        app = proxy._get_current_object()
    service: SmsCodeService | None = app.extensions.get(EXTENSION_KEY)
    if service is None:
        raise RuntimeError(
            "flask-smscode is not set up on this app: register sms_bp or call "
            "SmsCode().init_app(app) first."
        )
    return service


def send_code(
    phone: str,
    purpose: str = "login",
    *,
    client_ip: str | None = None,
    idempotency_key: str | None = None,
) -> SendResult:
    """Send a code to ``phone`` for ``purpose`` in the current app; see :class:`SendResult`."""
    return get_service().send(phone, purpose, client_ip=client_ip, idempotency_key=idempotency_key)


def verify_code(
    phone: str, code: str, purpose: str = "login", *, client_ip: str | None = None
) -> VerifyResult:
    """Verify and consume ``code``; returns the verified-phone token."""
    return get_service().verify(phone, code, purpose, client_ip=client_ip)


def check_token(
    token: str, purpose: str | None = None, *, phone: str | None = None, consume: bool = True
) -> VerifiedPhone:
    """Check (and by default use up) a verified-phone token from ``/sms/verify``."""
    return get_service().check_token(token, purpose, phone=phone, consume=consume)


def delivery_status(phone: str, purpose: str = "login") -> Delivery:
    """The last code's delivery for ``phone`` and ``purpose`` in the current app.

    Needs the report receiver (SMSCODE_ALIYUN_REPORT_SECRET) and the provider's report push
    pointed at it; without reports a live code stays ``waiting``.
    """
    service = get_service()
    e164 = service.normalize(phone)
    snapshot = service.status(e164, purpose)
    delivery = service.deliveries.of(e164, snapshot.out_id)
    if snapshot.sender and delivery.out_id and delivery.out_id == snapshot.out_id:
        # The live code's send: name the sender that carried it (routes, failover).
        delivery = dataclasses.replace(delivery, sender=snapshot.sender)
    return delivery
