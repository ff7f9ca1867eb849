"""A small site that signs people up and in with SMS codes, to show flask-smscode at work.

Run ``python demo_app.py`` and open http://127.0.0.1:5000: with no configuration it uses the
in-memory store and the console sender, and prints each code on the terminal. It is a demo:
debug mode is on (only so the console sender may show codes), accounts live in a dict and
vanish on restart. Do not deploy it.

Environment (all optional):

- ``HOST`` / ``PORT``: where ``python demo_app.py`` listens (127.0.0.1:5000).
- ``SMSCODE_*``: any flask-smscode setting; values are parsed as JSON when they parse
  (``SMSCODE_CODE_TTL_SECONDS=120``, ``SMSCODE_TEST_NUMBERS='{"13800138000":"123456"}'``),
  except settings that are text by nature (URIs, keys, names), which stay strings.
- ``REDIS_URL``: shortcut for ``SMSCODE_STORAGE_URI`` (which wins when both are set).
- ``SECRET_KEY``: signs the session cookie and the codes' HMAC; random per start if unset,
  so a restart signs everybody out and invalidates codes in flight.
- ``FLASK_DEBUG=0``: turn debug mode off (the console sender then hides codes).
- ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET``: read by the package
  itself with ``SMSCODE_SENDER=aliyun`` (plus ``SMSCODE_ALIYUN_SIGN_NAME`` / ``_TEMPLATE_CODE``).

``flask --app demo_app run`` and ``flask --app demo_app smscode ...`` find the module-level
``app``, which is built on first access so that importing :func:`create_app` (as the tests
do) builds no app and reads no environment.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import (
    Flask,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from flask_smscode import InvalidToken, check_token, mask_phone, sms_bp
from flask_smscode.config import DEFAULTS, get_setting

ACCOUNTS_KEY = "demo_accounts"
NAME_MAX_LENGTH = 32
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


# -- accounts (demo only) --------------------------------------------------------------------
@dataclass(frozen=True)
class Account:
    name: str
    created_at: datetime


@dataclass
class Accounts:
    """Phone (E.164) → account, in memory. Demo only: a real app keeps users in its database,
    and this dict is per process and emptied by every restart."""

    _by_phone: dict[str, Account] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, phone: str) -> Account | None:
        with self._lock:
            return self._by_phone.get(phone)

    def create(self, phone: str, name: str) -> Account | None:
        """The new account, or ``None`` when the phone already has one (check and insert
        under one lock, so two signups for one phone cannot both win)."""
        with self._lock:
            if phone in self._by_phone:
                return None
            account = Account(name, datetime.now(timezone.utc))
            self._by_phone[phone] = account
            return account


def accounts() -> Accounts:
    return current_app.extensions[ACCOUNTS_KEY]


# -- configuration ---------------------------------------------------------------------------
def _is_text_setting(key: str) -> bool:
    """Settings whose default is text or unset (URIs, keys, sign names) are never JSON:
    ``SMSCODE_SECRET_KEY=1234`` must stay the string "1234", not become an int."""
    return key in DEFAULTS and (DEFAULTS[key] is None or isinstance(DEFAULTS[key], str))


def config_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The app settings found in ``environ``: ``SMSCODE_*``, ``REDIS_URL``, ``SECRET_KEY``."""
    config: dict[str, Any] = {}
    if environ.get("REDIS_URL"):
        config["SMSCODE_STORAGE_URI"] = environ["REDIS_URL"]
    for key, raw in environ.items():
        if not key.startswith("SMSCODE_"):
            continue
        value: Any = raw
        if not _is_text_setting(key):
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
        config[key] = value
    if environ.get("SECRET_KEY"):
        config["SECRET_KEY"] = environ["SECRET_KEY"]
    return config


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the demo app; precedence: ``config`` > environment > demo defaults."""
    app = Flask(__name__, template_folder="demo/templates", static_folder="demo/static")
    if "FLASK_DEBUG" not in os.environ:
        # Demo only: the console sender shows codes only in debug (or testing) mode. Never
        # run a real site with debug on.
        app.config["DEBUG"] = True
    app.config.update(
        SECRET_KEY=secrets.token_hex(32),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.config.update(config_from_env(os.environ))
    app.config.update(config or {})
    # Only for the banner: whether sessions will survive a restart.
    app.extensions["demo_secret_given"] = (bool(os.environ.get("SECRET_KEY"))
                                           or "SECRET_KEY" in (config or {}))
    app.extensions[ACCOUNTS_KEY] = Accounts()

    # Validates the SMSCODE_* settings now (a bad one fails the start, naming the key).
    app.register_blueprint(sms_bp)
    _register_views(app)
    _mount_metrics(app)
    return app


def _mount_metrics(app: Flask) -> None:
    """``GET /metrics`` in Prometheus text format, when the ``prometheus`` extra is installed."""
    try:
        from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
    except ImportError:
        return
    from flask_smscode.metrics import register_metrics

    register_metrics(REGISTRY)
    app.add_url_rule("/metrics", "metrics",
                     lambda: Response(generate_latest(REGISTRY), mimetype=CONTENT_TYPE_LATEST))


# -- views -----------------------------------------------------------------------------------
# CSRF: the demo's own form POSTs (/login, /signup) carry nothing but a single-use token from
# /sms/verify, which an attacker cannot obtain for the victim's phone, and the session cookie is
# SameSite=Lax. An attacker could still post a token for *their own* phone and sign a victim
# into the attacker's account (login CSRF); a real app should add CSRF tokens (Flask-WTF).
# /logout is a POST for the same reason: a link or image cannot sign anybody out.

_SECURITY_HEADERS = {
    # Everything is served from this origin: no CDN, no inline script.
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data:; base-uri 'none'; "
                                "form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _register_views(app: Flask) -> None:
    app.add_url_rule("/", "index", index)
    app.add_url_rule("/login", "login", login, methods=["GET", "POST"])
    app.add_url_rule("/signup", "signup", signup, methods=["GET", "POST"])
    app.add_url_rule("/account", "account", account)
    app.add_url_rule("/logout", "logout", logout, methods=["POST"])
    app.after_request(_add_headers)
    app.jinja_env.filters["mask_phone"] = mask_phone


def _add_headers(response: Response) -> Response:
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint in {"login", "signup", "account"}:
        # Pages show who is signed in: no shared cache may keep them.
        response.headers["Cache-Control"] = "no-store"
    return response


def _signed_in() -> tuple[str, Account] | None:
    """The signed-in phone and its account; a session for a vanished account is dropped."""
    phone = session.get("phone")
    if not phone:
        return None
    found = accounts().get(phone)
    if found is None:
        session.clear()
        return None
    return phone, found


def _sign_in(phone: str) -> Response:
    session.clear()  # a fresh session for the new identity
    session["phone"] = phone
    return redirect(url_for("account"), code=303)


def _error(text: str, link: str | None = None, link_text: str | None = None) -> dict[str, Any]:
    return {"text": text, "link": link, "link_text": link_text}


def _token_error(exc: InvalidToken) -> dict[str, Any]:
    # Chinese text takes full-width punctuation.
    return _error(f"验证已失效，请重新获取验证码。 {exc.message}")  # noqa: RUF001


def index() -> Response:
    return redirect(url_for("account" if _signed_in() else "login"))


def login() -> Response | tuple[str, int] | str:
    """GET: the form. POST (from the page's script): a verified-phone token for purpose login."""
    if request.method != "POST":  # GET or HEAD
        if _signed_in():
            return redirect(url_for("account"))
        return _page("login")
    try:
        verified = check_token(request.form.get("token", ""), purpose="login")
    except InvalidToken as exc:
        return _page("login", error=_token_error(exc)), 400
    if accounts().get(verified.phone) is None:
        return _page("login", error=_error("该手机号未注册 No account for this phone —",
                                           url_for("signup"), "注册 sign up")), 404
    return _sign_in(verified.phone)


def signup() -> Response | tuple[str, int] | str:
    """GET: the form. POST: a verified-phone token for purpose signup, plus a display name."""
    if request.method != "POST":  # GET or HEAD
        if _signed_in():
            return redirect(url_for("account"))
        return _page("signup")
    name = " ".join(request.form.get("name", "").split())
    if not name or len(name) > NAME_MAX_LENGTH or _CONTROL_CHARS.search(name):
        # Checked before the token, so a bad name does not use the token up.
        return _page("signup", name=name, error=_error(
            f"请输入 1 到 {NAME_MAX_LENGTH} 个字符的昵称。 "
            f"Enter a display name of 1 to {NAME_MAX_LENGTH} characters.")), 400
    try:
        verified = check_token(request.form.get("token", ""), purpose="signup")
    except InvalidToken as exc:
        return _page("signup", name=name, error=_token_error(exc)), 400
    if accounts().create(verified.phone, name) is None:
        return _page("signup", name=name, error=_error(
            "该手机号已注册 This phone already has an account —", url_for("login"),
            "登录 log in")), 409
    return _sign_in(verified.phone)


def account() -> Response | str:
    found = _signed_in()
    if found is None:
        return redirect(url_for("login"))
    phone, acct = found
    return render_template("account.html", title="账户 Account", phone=phone, account=acct)


def logout() -> Response:
    session.clear()
    flash("已退出登录。 You have signed out.")
    return redirect(url_for("login"), code=303)


def _page(purpose: str, *, error: dict[str, Any] | None = None, name: str = "") -> str:
    """The login or signup page (both drive /sms/send and /sms/verify from demo.js)."""
    title = "登录 Log in" if purpose == "login" else "注册 Sign up"
    return render_template(f"{purpose}.html", title=title, purpose=purpose, error=error,
                           name=name)


# -- running it ------------------------------------------------------------------------------
def _redact_uri(uri: str) -> str:
    """The storage URI without its password, for the banner."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def banner(app: Flask, url: str) -> str:
    """What a newcomer needs to know on start: where, which store and sender, where codes go."""
    store = str(get_setting(app.config, "SMSCODE_STORAGE_URI"))
    sender = get_setting(app.config, "SMSCODE_SENDER")
    lines = [f"flask-smscode demo: open {url}",
             f"  store:  {_redact_uri(store)}"
             + (" (in this process; forgotten on restart)" if store.startswith("memory") else "")]
    if sender == "console":
        shown = app.debug or app.testing
        lines.append("  sender: console (no SMS is sent) - "
                     + ("the code will be printed below" if shown else
                        "codes are NOT shown because debug is off"))
    else:
        lines.append(f"  sender: {sender}")
    if app.debug:
        lines.append("  debug:  on (demo only: never run a real site in debug mode)")
    if not app.extensions.get("demo_secret_given"):
        lines.append("  SECRET_KEY: random for this run (set SECRET_KEY to keep sessions)")
    lines.append("  accounts: in memory (demo only)")
    return "\n".join(lines)


def main() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    demo = create_app()
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    print(banner(demo, f"http://{host}:{port}/"), flush=True)
    # No reloader (it would start the app twice and print codes from two processes) and no
    # interactive debugger (it runs Python from the browser if HOST exposes the port).
    demo.run(host=host, port=port, debug=demo.debug, use_reloader=False, use_debugger=False)


def __getattr__(name: str) -> Any:
    """``demo_app.app``, built on first access (for ``flask --app demo_app`` and gunicorn)."""
    if name == "app":
        built = globals()["app"] = create_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()
