"""A small site that signs people up and in with SMS codes, to show flask-smscode at work.

Run ``bash scripts/demo.sh`` (or ``.venv/bin/python demo_app.py``) and open
http://127.0.0.1:5000: with no configuration it uses the in-memory store and the console
sender, and prints each code on the terminal. Accounts are kept in SQLite under the app's
``instance/`` folder, so they survive a restart. It is a demo: debug mode is on (only so the
console sender may show codes). Do not deploy it.

Environment (all optional):

- ``HOST`` / ``PORT``: where ``python demo_app.py`` listens (127.0.0.1:5000).
- ``SMSCODE_*``: any flask-smscode setting; values are parsed as JSON when they parse
  (``SMSCODE_CODE_TTL_SECONDS=120``, ``SMSCODE_TEST_NUMBERS='{"13800138000":"123456"}'``),
  except settings that are text by nature (URIs, keys, names), which stay strings.
- ``REDIS_URL``: shortcut for ``SMSCODE_STORAGE_URI`` (which wins when both are set).
- ``SECRET_KEY``: signs the session cookie and keys the codes' HMAC. Unset, a key is created
  once in ``instance/secret_key`` and reused by every process, so the site and
  ``.venv/bin/flask --app demo_app smscode send ...`` agree (on a shared Redis store).
- ``DEMO_INSTANCE_PATH``: another folder for the SQLite file and the key (the tests use it).
- ``FLASK_DEBUG=0``: turn debug mode off (the console sender then hides codes).
- ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET``: read by the package
  itself with ``SMSCODE_SENDER=aliyun`` (plus ``SMSCODE_ALIYUN_SIGN_NAME`` / ``_TEMPLATE_CODE``).

``flask --app demo_app run`` and ``flask --app demo_app smscode ...`` find the module-level
``app``, which is built on first access so that importing :func:`create_app` (as the tests
do) builds no app and reads no environment.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import (
    Flask,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from demo.accounts import Account, Accounts
from demo.texts import DEFAULT_LANGUAGE, HTML_LANG, LANGUAGES, TEXTS
from flask_smscode import InvalidToken, check_token, mask_phone, sms_bp
from flask_smscode.config import DEFAULTS, get_setting

ACCOUNTS_KEY = "demo_accounts"
SECRET_FILE = "secret_key"  # noqa: S105 (a file name, not a secret)
DATABASE_FILE = "demo.sqlite3"
LANG_COOKIE = "lang"
LANG_COOKIE_MAX_AGE_SECONDS = 365 * 86400
NAME_MAX_LENGTH = 32
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def accounts() -> Accounts:
    found: Accounts = current_app.extensions[ACCOUNTS_KEY]
    return found


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


def stable_secret_key(instance_path: str | Path) -> str:
    """The key in ``instance/secret_key``, created (mode 0600) by the first process that
    needs it. One key for every process: the site, ``flask smscode`` and gunicorn workers
    must agree on the codes' HMAC, and sessions should survive a restart."""
    path = Path(instance_path) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
        if len(key) >= 32:
            return key
        raise RuntimeError(f"{path} is empty or too short; delete it to make a new key.") from None
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(key + "\n")
    return key


def create_app(
    config: dict[str, Any] | None = None, *, instance_path: str | Path | None = None
) -> Flask:
    """Build the demo app; precedence: ``config`` > environment > demo defaults.

    ``instance_path`` (else ``DEMO_INSTANCE_PATH``, else ``./instance``) holds the accounts'
    SQLite file and, when no ``SECRET_KEY`` is given, the stable key."""
    folder = instance_path or os.environ.get("DEMO_INSTANCE_PATH") or None
    app = Flask(
        __name__,
        template_folder="demo/templates",
        static_folder="demo/static",
        instance_path=str(Path(folder).resolve()) if folder else None,
    )
    if "FLASK_DEBUG" not in os.environ:
        # Demo only: the console sender shows codes only in debug (or testing) mode. Never
        # run a real site with debug on.
        app.config["DEBUG"] = True
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    app.config.update(config_from_env(os.environ))
    app.config.update(config or {})
    app.extensions["demo_secret_source"] = "given"  # noqa: S105 (where the key came from)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = stable_secret_key(app.instance_path)
        app.extensions["demo_secret_source"] = str(Path(app.instance_path) / SECRET_FILE)
    app.extensions[ACCOUNTS_KEY] = Accounts(
        app.config.get("DEMO_DATABASE") or Path(app.instance_path) / DATABASE_FILE
    )

    if app.config.get("DEMO_CHALLENGE", os.environ.get("DEMO_CHALLENGE") == "1"):
        _enable_challenge(app)  # the pre-send hook, shown with an arithmetic question
    # Validates the SMSCODE_* settings now (a bad one fails the start, naming the key).
    app.register_blueprint(sms_bp)
    _register_views(app)
    _mount_metrics(app)
    return app


# -- the pre-send hook: a stand-in for a captcha (DEMO_CHALLENGE=1) --------------------------
# SMSCODE_PRE_SEND_HOOK runs before anything is counted or sent. Here it asks for a solved
# arithmetic question, remembered in the session for a few minutes; a real app checks a
# captcha token there instead (README: "A captcha before the send").
CHALLENGE_PASS_SECONDS = 600
_CHALLENGE_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Challenge</title>
<link rel="stylesheet" href="{{ url_for('static', filename='demo.css') }}"></head><body><main>
<form method="post"><p><label for="answer">{{ a }} + {{ b }} = ?</label></p>
<input id="answer" name="answer" inputmode="numeric" autocomplete="off" required>
<input type="hidden" name="next" value="{{ next }}">
{% if wrong %}<p role="alert">&#x2717;</p>{% endif %}<button>OK</button></form></main>
</body></html>"""


def _enable_challenge(app: Flask) -> None:
    app.config.setdefault("SMSCODE_PRE_SEND_HOOK", demo_challenge_hook)
    messages = {
        lang: dict(texts) for lang, texts in (app.config.get("SMSCODE_MESSAGES") or {}).items()
    }
    messages.setdefault("en", {}).setdefault(
        "challenge_required", "Answer the question at /challenge first, then ask for a code."
    )
    messages.setdefault("zh", {}).setdefault(
        "challenge_required",
        "请先在 /challenge 页面回答问题，再获取验证码。",  # noqa: RUF001
    )
    app.config["SMSCODE_MESSAGES"] = messages
    app.add_url_rule("/challenge", "challenge", challenge, methods=["GET", "POST"])


def demo_challenge_hook(req: Any, phone: str, purpose: str) -> bool:
    """Passes while the session holds a solved question (no request: the CLI, allowed)."""
    import time

    return req is None or float(session.get("challenge_passed_until", 0)) > time.time()


def challenge() -> Response | str:
    import time

    from flask import render_template_string

    target = safe_next(request.values.get("next", "/login"))
    wrong = False
    if request.method == "POST":
        if request.form.get("answer", "").strip() == str(session.pop("challenge_answer", "")):
            session["challenge_passed_until"] = time.time() + CHALLENGE_PASS_SECONDS
            return redirect(target)
        wrong = True
    a, b = secrets.randbelow(9) + 1, secrets.randbelow(9) + 1
    session["challenge_answer"] = a + b
    return render_template_string(_CHALLENGE_PAGE, a=a, b=b, next=target, wrong=wrong)


def _mount_metrics(app: Flask) -> None:
    """``GET /metrics`` in Prometheus text format: through ``prometheus_client`` when the
    ``prometheus`` extra is installed (scripts/demo.sh installs it), else the same counters
    written out by hand, so the README's "the demo serves /metrics" holds either way."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        app.add_url_rule("/metrics", "metrics", _plain_metrics)
        return
    from flask_smscode.metrics import metrics_view

    # The package's view: this process's counts, or with PROMETHEUS_MULTIPROC_DIR set
    # (gunicorn, see gunicorn.conf.py in the README) the totals of all workers.
    app.add_url_rule("/metrics", "metrics", metrics_view)


def _plain_metrics() -> Response:
    from flask_smscode.metrics import STATS

    snapshot = STATS.snapshot()
    lines = [  # why the package's own /metrics would be off, and what this page is instead
        "# prometheus_client is not installed: the demo writes this process's counters itself"
    ]
    for name, labels, counts in (
        ("smscode_sends_total", ("purpose", "outcome"), snapshot["sends"]),
        ("smscode_verifies_total", ("purpose", "outcome"), snapshot["verifies"]),
        ("smscode_provider_requests_total", ("action", "code"), snapshot["provider_calls"]),
    ):
        lines.append(f"# TYPE {name} counter")
        for key, count in sorted(counts.items()):
            pairs = ",".join(f'{label}="{value}"' for label, value in zip(labels, key, strict=True))
            lines.append(f"{name}{{{pairs}}} {float(count)}")
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")


# -- language --------------------------------------------------------------------------------
def _language() -> str:
    """The visitor's choice (cookie), else ``Accept-Language``, else Chinese."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    best = request.accept_languages.best_match(["zh", "zh-CN", "en"])
    return best.split("-")[0] if best else DEFAULT_LANGUAGE


def _text(key: str, **values: Any) -> str:
    text = TEXTS[g.lang][key]
    return text.format(**values) if values else text


def _set_language() -> None:
    g.lang = _language()


def safe_next(target: str, fallback: str = "/") -> str:
    """``target`` if it is a path of this site, else ``fallback``: the one check of every
    ``next`` the demo redirects to (copy it with the pattern).

    Refused (issue 15): anything not starting with one ``/``; ``//host`` and ``/\\host``
    (browsers read both as another host); a backslash anywhere; any control character or
    whitespace, before or after percent-decoding (browsers drop tabs and newlines from a
    URL, so ``/%09/evil.example`` became ``//evil.example``, and a newline in a
    ``Location`` header was a 500); and anything with a scheme or a host.
    """
    from urllib.parse import unquote, urlsplit

    if not isinstance(target, str) or len(target) > 2048:
        return fallback
    forms = [target]
    for _ in range(3):  # decoded again: a proxy or the browser may decode once more
        forms.append(unquote(forms[-1]))
    for form in forms:
        if not form.startswith("/") or form[1:2] in ("/", "\\") or "\\" in form:
            return fallback
        if any(ord(char) < 0x21 or ord(char) == 0x7F or char.isspace() for char in form):
            return fallback
        parts = urlsplit(form)
        if parts.scheme or parts.netloc:
            return fallback
    return target


def switch_language(lang: str) -> Response:
    """``GET /lang/<zh|en>?next=/path``: remember the choice, go back to the page."""
    response = redirect(safe_next(request.args.get("next", "")), code=303)
    if lang in LANGUAGES:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=LANG_COOKIE_MAX_AGE_SECONDS, samesite="Lax", httponly=True
        )
    return response


def _template_context() -> dict[str, Any]:
    lang = g.get("lang", DEFAULT_LANGUAGE)
    here = request.full_path.rstrip("?") if request.method == "GET" else request.path
    return {"t": TEXTS[lang], "lang": lang, "html_lang": HTML_LANG[lang], "here": here}


# -- views -----------------------------------------------------------------------------------
# CSRF: the demo's own form POSTs (/login, /signup) carry nothing but a single-use token from
# /sms/verify, which an attacker cannot obtain for the victim's phone, and the session cookie is
# SameSite=Lax. An attacker could still post a token for *their own* phone and sign a victim
# into the attacker's account (login CSRF); a real app should add CSRF tokens (Flask-WTF).
# /logout is a POST for the same reason: a link or image cannot sign anybody out.

CONTENT_SECURITY_POLICY = (
    # Everything from this origin: no CDN, no inline script, no inline style, no eval.
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _register_views(app: Flask) -> None:
    app.add_url_rule("/", "index", index)
    app.add_url_rule("/login", "login", login, methods=["GET", "POST"])
    app.add_url_rule("/signup", "signup", signup, methods=["GET", "POST"])
    app.add_url_rule("/account", "account", account)
    app.add_url_rule("/logout", "logout", logout, methods=["POST"])
    app.add_url_rule("/lang/<lang>", "switch_language", switch_language)
    app.before_request(_set_language)
    app.after_request(_add_headers)
    app.context_processor(_template_context)
    app.jinja_env.filters["mask_phone"] = mask_phone


def _add_headers(response: Response) -> Response:
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint in {"login", "signup", "account"}:
        # Pages show who is signed in: no shared cache may keep them.
        response.headers["Cache-Control"] = "no-store"
        response.vary.add("Cookie")
    return response


def _signed_in() -> Account | None:
    """The signed-in account; a session for a vanished account is dropped."""
    phone = session.get("phone")
    if not phone:
        return None
    found = accounts().get(phone)
    if found is None:
        session.clear()
    return found


def _sign_in(phone: str) -> Response:
    session.clear()  # a fresh session for the new identity
    session["phone"] = phone
    return redirect(url_for("account"), code=303)


def _error(text: str, link: str | None = None, link_text: str | None = None) -> dict[str, Any]:
    return {"text": text, "link": link, "link_text": link_text}


def _token_error(exc: InvalidToken) -> dict[str, Any]:
    return _error(f"{_text('token_invalid')} ({exc.message})")


def index() -> Response:
    return redirect(url_for("account" if _signed_in() else "login"))


def login() -> Response | tuple[str, int] | str:
    """GET: the form. POST: a verified-phone token for purpose login (from smscode.js)."""
    if request.method != "POST":  # GET or HEAD
        if _signed_in():
            return redirect(url_for("account"))
        return _page("login")
    try:
        verified = check_token(request.form.get("token", ""), purpose="login")
    except InvalidToken as exc:
        return _page("login", error=_token_error(exc)), 400
    if accounts().get(verified.phone) is None:
        # Only now, after the phone was proven, does the site say it has no account: the
        # send step answered exactly as for a known phone.
        return _page(
            "login", error=_error(_text("unknown_phone"), url_for("signup"), _text("signup_title"))
        ), 404
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
        return _page(
            "signup", name=name, error=_error(_text("name_invalid", max=NAME_MAX_LENGTH))
        ), 400
    try:
        verified = check_token(request.form.get("token", ""), purpose="signup")
    except InvalidToken as exc:
        return _page("signup", name=name, error=_token_error(exc)), 400
    if accounts().create(verified.phone, name) is None:
        return _page(
            "signup",
            name=name,
            error=_error(_text("known_phone"), url_for("login"), _text("login_title")),
        ), 409
    return _sign_in(verified.phone)


def account() -> Response | str:
    found = _signed_in()
    if found is None:
        return redirect(url_for("login"))
    return render_template("account.html", title=_text("account_title"), account=found)


def logout() -> Response:
    session.clear()
    flash(_text("signed_out"))
    return redirect(url_for("login"), code=303)


def _page(purpose: str, *, error: dict[str, Any] | None = None, name: str = "") -> str:
    """The login or signup page (both drive /sms/send and /sms/verify through smscode.js)."""
    return render_template(
        f"{purpose}.html",
        title=_text(f"{purpose}_title"),
        purpose=purpose,
        error=error,
        name=name,
        name_max=NAME_MAX_LENGTH,
    )


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
    lines = [
        f"flask-smscode demo: open {url}",
        f"  store:  {_redact_uri(store)}"
        + (" (in this process; forgotten on restart)" if store.startswith("memory") else ""),
    ]
    if sender == "console":
        shown = app.debug or app.testing
        lines.append(
            "  sender: console (no SMS is sent) - "
            + (
                "the code will be printed below"
                if shown
                else "codes are NOT shown because debug is off"
            )
        )
    else:
        lines.append(f"  sender: {sender}")
    if app.debug:
        lines.append("  debug:  on (demo only: never run a real site in debug mode)")
    source = app.extensions.get("demo_secret_source", "given")
    lines.append(
        "  SECRET_KEY: "
        + (
            "from the environment/config"
            if source == "given"
            else f"{source} (created once, reused)"
        )
    )
    lines.append(f"  accounts: SQLite, {accounts_path(app)}")
    lines.append(f"  metrics:  {url.rstrip('/')}/metrics")
    return "\n".join(lines)


def accounts_path(app: Flask) -> Path:
    found: Accounts = app.extensions[ACCOUNTS_KEY]
    return found.path


def main() -> None:
    # No logging.basicConfig here: the package shows its own lines (the console sender's
    # codes included) when the app configured no logging, under gunicorn as well as here.
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
