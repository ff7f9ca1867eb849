"""Every sentence a person reads, in one catalogue keyed by error code, one file per language.

Why files and not Python: a translator adds a language by copying ``locales/en.json`` to
``locales/<lang>.json`` (or to the app's ``SMSCODE_LOCALES_DIR``) and translating the
values; no code changes. Keys are the machine ``error`` codes (``invalid_code``), or a
code and a variant (``invalid_code.last``) where one code has several sentences; keys
starting with ``_`` are comments. ``{name}`` placeholders are filled in when the answer is
built, so errors carry a key and parameters, never finished text.

A missing key falls back to the same code's base sentence in that language, then to
English (the source language), so a partial translation still answers sensibly.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import current_app, has_request_context, request
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

LOCALES_DIR = Path(__file__).with_name("locales")
SOURCE_LANGUAGE = "en"
# Mainland China is the market this package is for (Alibaba Cloud SMS, +86 numbers), so a
# client that states no usable preference reads Simplified Chinese.
DEFAULT_LANGUAGE = "zh"


class CatalogueError(ValueError):
    """A message file or the catalogue's languages are unusable. Raised at start-up, where
    :mod:`flask_smscode.core.settings` reports it as a ConfigurationError naming the key
    (this module stays below the exception tree: errors render through it)."""


def normalize_tag(tag: str) -> str:
    """``zh_CN`` / ``zh-cn`` / ``ZH-CN`` → ``zh-cn``: one spelling per language tag."""
    return tag.strip().replace("_", "-").lower()


def load_directory(path: str | os.PathLike[str]) -> dict[str, dict[str, str]]:
    """``{language: {key: text}}`` from every ``<language>.json`` in ``path``."""
    languages: dict[str, dict[str, str]] = {}
    for file in sorted(Path(path).glob("*.json")):
        languages[normalize_tag(file.stem)] = _load_file(file)
    return languages


def _load_file(file: Path) -> dict[str, str]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CatalogueError(f"{file}: not a readable UTF-8 JSON file ({exc}).") from None
    return _checked(data, str(file))


def _checked(data: Any, where: str) -> dict[str, str]:
    if not isinstance(data, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise CatalogueError(f"{where}: must be a JSON object of message key -> text.")
    return {k: v for k, v in data.items() if not k.startswith("_")}


class _Blank(dict[str, Any]):
    """A placeholder the caller did not supply stays visible instead of raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Catalogue:
    """The messages of one app: built-in languages, overlaid with the app's own."""

    def __init__(
        self, languages: Mapping[str, Mapping[str, str]], default_language: str = DEFAULT_LANGUAGE
    ) -> None:
        self._languages = {normalize_tag(lang): dict(texts) for lang, texts in languages.items()}
        if SOURCE_LANGUAGE not in self._languages:
            raise CatalogueError("The message catalogue has no English (en) texts.")
        default = self.match(default_language)
        if default is None:
            raise CatalogueError(
                f"SMSCODE_DEFAULT_LANGUAGE: {default_language!r} has no messages; available: "
                + ", ".join(self.languages)
                + "."
            )
        self.default_language = default

    @classmethod
    def build(
        cls,
        *,
        directory: str | os.PathLike[str] | None = None,
        extra: Mapping[str, Any] | None = None,
        default_language: str | None = None,
    ) -> Catalogue:
        """Built-in files, then ``directory``'s files, then ``extra``; each later source
        overrides single keys of the earlier ones (SMSCODE_LOCALES_DIR, SMSCODE_MESSAGES)."""
        languages = {lang: dict(texts) for lang, texts in BUILTIN.items()}
        if directory:
            if not Path(directory).is_dir():
                raise CatalogueError(f"SMSCODE_LOCALES_DIR: {directory!r} is not a directory.")
            _merge(languages, load_directory(directory))
        extra = extra or {}
        if not isinstance(extra, Mapping):
            raise CatalogueError(
                "SMSCODE_MESSAGES must be a dict of language -> {message key: text}."
            )
        _merge(
            languages,
            {
                normalize_tag(str(lang)): _checked(texts, f"SMSCODE_MESSAGES[{lang!r}]")
                for lang, texts in extra.items()
            },
        )
        return cls(languages, default_language or DEFAULT_LANGUAGE)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted(self._languages))

    def keys(self, language: str = SOURCE_LANGUAGE) -> frozenset[str]:
        return frozenset(self._languages.get(normalize_tag(language), ()))

    def match(self, tag: str | None) -> str | None:
        """The catalogue language for a tag: exact (``pt-br``), else its primary part
        (``zh-TW`` → ``zh``), else ``None``."""
        if not tag:
            return None
        tag = normalize_tag(tag)
        if tag in self._languages:
            return tag
        primary = tag.split("-", 1)[0]
        return primary if primary in self._languages else None

    def text(
        self,
        key: str,
        language: str | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        fallback: str | None = None,
    ) -> str:
        """The sentence for ``key`` in ``language``, placeholders filled from ``params``."""
        lang = self.match(language) or self.default_language
        base = key.split(".", 1)[0]
        template = None
        for texts in (self._languages[lang], self._languages[SOURCE_LANGUAGE]):
            template = texts.get(key) or texts.get(base)
            if template is not None:
                break
        if template is None:
            template = fallback or self._languages[SOURCE_LANGUAGE].get("error", "")
        try:
            return template.format_map(_Blank(params or {}))
        except (ValueError, IndexError, AttributeError):  # a translator's stray brace
            return template


def _merge(into: dict[str, dict[str, str]], more: Mapping[str, Mapping[str, str]]) -> None:
    for lang, texts in more.items():
        into.setdefault(lang, {}).update(texts)


BUILTIN: dict[str, dict[str, str]] = load_directory(LOCALES_DIR)
_DEFAULT = Catalogue(BUILTIN)


def default_catalogue() -> Catalogue:
    """The built-in catalogue, for text rendered outside any app (``exc.message``)."""
    return _DEFAULT


def request_language(catalogue: Catalogue) -> str:
    """The language of the current request's answer.

    The app's Flask-Babel locale when Flask-Babel is set up on the app (the app has already
    decided, e.g. from the user's profile); else werkzeug's ``Accept-Language`` negotiation
    (q-values, ``zh-CN`` → ``zh``); else ``SMSCODE_DEFAULT_LANGUAGE``.
    """
    if not has_request_context():
        return catalogue.default_language
    if "babel" in current_app.extensions:
        babel_language = _babel_language()
        chosen = catalogue.match(babel_language)
        if chosen is not None:
            return chosen
    header = request.headers.get("Accept-Language")
    if header is not None and len(header) > _CACHED_HEADER_CHARS:
        return _header_language.__wrapped__(catalogue, header)
    return _header_language(catalogue, header)


_CACHED_HEADER_CHARS = 200  # longer values (rare, or made up) are parsed, not kept


@functools.lru_cache(maxsize=512)  # a few header values cover nearly all clients; bounded
def _header_language(catalogue: Catalogue, header: str | None) -> str:
    """The answer's language for an ``Accept-Language`` value (a pure function of both:
    a catalogue does not change once built)."""
    # werkzeug parses the header and sorts it by q-value; each tag is then matched exactly
    # or by its primary subtag. (LanguageAccept.best_match tries primary subtags only after
    # no exact match at all, so "zh-CN, en;q=0.2" would answer in English.)
    for tag, quality in parse_accept_header(header, LanguageAccept):
        if quality <= 0:
            continue
        if tag == "*":
            return catalogue.default_language
        chosen = catalogue.match(tag)
        if chosen is not None:
            return chosen
    return catalogue.default_language


def _babel_language() -> str | None:
    try:
        from flask_babel import get_locale
    except ImportError:
        return None
    locale = get_locale()
    if locale is None:
        return None
    # Babel's zh_Hans_CN → "zh-hans-cn"; match() falls back to "zh".
    return "-".join(part for part in (locale.language, locale.script, locale.territory) if part)


def environment_language(catalogue: Catalogue, environ: Mapping[str, str] | None = None) -> str:
    """The CLI's language from the POSIX locale variables (LANGUAGE, LC_ALL, LC_MESSAGES,
    LANG, first set). ``C`` and ``POSIX`` mean untranslated, i.e. English, as in gettext."""
    environ = os.environ if environ is None else environ
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if not value:
            continue
        for candidate in value.split(":"):  # LANGUAGE may list several: "zh_CN:en"
            tag = candidate.split(".", 1)[0].split("@", 1)[0]
            if tag in ("C", "POSIX"):
                return SOURCE_LANGUAGE
            chosen = catalogue.match(tag)
            if chosen is not None:
                return chosen
        break
    return catalogue.default_language
