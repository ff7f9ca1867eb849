"""What every ``flask smscode`` command shares: the app, its service and Aliyun client,
refusals as ``Error:`` lines, sentences from the message catalogue, and a table printer.

``_t`` keeps gettext's underscore although the command modules import it: it marks a
catalogue key at each call, and ``tests/test_messages.py`` finds the keys by that name.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import click
from flask import has_app_context

from flask_smscode.aliyun.client import AliyunSms
from flask_smscode.aliyun.errors import AliyunSmsError
from flask_smscode.core.service import SmsCodeService
from flask_smscode.core.settings import catalogue_from_config
from flask_smscode.errors import ConfigurationError, SmsCodeError
from flask_smscode.extension import EXTENSION_KEY, get_service, init_app
from flask_smscode.messages import Catalogue, default_catalogue, environment_language
from flask_smscode.signals import current_app_object


@contextmanager
def errors() -> Iterator[None]:
    """Refusals become ``Error: <machine code>: <message>`` and exit 1, never a traceback."""
    failure: click.ClickException | None = None
    try:
        yield
    except SmsCodeError as exc:
        catalogue, language = _messages()
        text = f"{exc.code}: {exc.render(language, catalogue)}"
        if exc.retry_after:
            text = _t("cli.error_retry", message=text, retry_after=exc.retry_after)
        failure = click.ClickException(text)
    except ConfigurationError as exc:
        failure = click.ClickException(str(exc))
    except AliyunSmsError as exc:  # its str() holds codes and the request id, never secrets
        failure = click.ClickException(str(exc))
    if failure is not None:
        raise failure


def flask_app() -> Any:
    """The app the command runs in (the object itself, not the ``current_app`` proxy)."""
    return current_app_object()


def _messages() -> tuple[Catalogue, str]:
    """The app's catalogue and the language chosen by --lang, the environment or the app.

    Option callbacks (``--date``) run before ``with_appcontext`` pushes the app: they get
    the built-in catalogue, in the same language.
    """
    app = flask_app() if has_app_context() else None
    service = app.extensions.get(EXTENSION_KEY) if app is not None else None
    try:
        catalogue = (
            service.messages
            if service is not None
            else catalogue_from_config(app.config)
            if app is not None
            else default_catalogue()
        )
    except ConfigurationError:  # reported by the command itself when it builds the service
        catalogue = default_catalogue()
    ctx = click.get_current_context(silent=True)
    chosen = ctx.find_root().meta.get("smscode.lang") if ctx is not None else None
    language = catalogue.match(chosen) if chosen else None
    if chosen and language is None:
        raise click.BadParameter(
            catalogue.text(
                "cli.lang.unknown",
                environment_language(catalogue),
                {"language": chosen, "available": ", ".join(catalogue.languages)},
            ),
            param_hint="--lang",
        )
    return catalogue, language or environment_language(catalogue)


def _t(key: str, **params: Any) -> str:
    """One CLI sentence from the catalogue, in the CLI's language."""
    catalogue, language = _messages()
    return catalogue.text(key, language, params)


def app_service() -> SmsCodeService:
    """The app's service, built here when the app did not register the blueprint."""
    app = flask_app()
    with errors():
        service: SmsCodeService = (
            get_service(app) if EXTENSION_KEY in app.extensions else init_app(app)
        )
        return service


def aliyun_client() -> AliyunSms:
    """An Alibaba Cloud SMS client from the app's settings; a missing key is an ``Error:``."""
    with errors():
        return AliyunSms.from_config(flask_app().config)


def limits_used(items: Iterable[Mapping[str, Any]]) -> str:
    """``used of limit`` per counted limit (``{"used": ..., "limit": ...}``), comma-joined."""
    return ", ".join(
        _t("cli.status.send_item", used=item["used"], limit=item["limit"]) for item in items
    )


def _display_width(text: str) -> int:
    """Terminal columns: a CJK character (wide or full-width) takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows padded into columns by display width, so Chinese headers line up too."""
    widths = [max(_display_width(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            str(cell) + " " * (w - _display_width(str(cell)))
            for cell, w in zip(row, widths, strict=True)
        ).rstrip()
        for row in rows
    ]
