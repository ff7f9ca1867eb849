"""``flask_smscode.__version__``: the installed distribution's version.

Read from the package metadata, so it cannot drift from ``pyproject.toml`` once installed;
a source tree that was never installed falls back to reading ``pyproject.toml`` itself.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

DISTRIBUTION = "flask-smscode"
_PROJECT_VERSION = re.compile(r'^\[project\][^\[]*?^version\s*=\s*"([^"]+)"', re.M | re.S)


def _from_pyproject() -> str:
    """The ``[project] version`` of the source tree this module sits in (``0+unknown``
    when there is none: a vendored copy without metadata)."""
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        found = _PROJECT_VERSION.search(pyproject.read_text(encoding="utf-8"))
    except OSError:
        found = None
    return found.group(1) if found else "0+unknown"


def _version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return _from_pyproject()


__version__ = _version()
