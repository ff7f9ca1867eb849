"""The JitAi low-code element's files: ``sms.json`` and an element folder's ``e.json``.

``sms.json`` holds ``{"accessKey", "accessSecret", "verifySign"}``; ``e.json`` says the
element's ``type`` (``SMS.Aliyun``) and where its files are (``backendBundleEntry``).
A missing file or key raises 46001 naming it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flask_smscode.aliyun.errors import AliyunInvalidArguments

ELEMENT_TYPE = "SMS.Aliyun"


def credentials_from_json(path: str | os.PathLike[str]) -> tuple[str, str, str]:
    """(access key id, secret, sign name) from a low-code ``sms.json``."""
    data = read_json_object(Path(path))
    for key in ("accessKey", "accessSecret", "verifySign"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise AliyunInvalidArguments(f"{Path(path).name} has no {key!r}")
    return data["accessKey"], data["accessSecret"], data["verifySign"]


def element_sms_json(folder: str | os.PathLike[str]) -> Path:
    """Where an element folder's ``sms.json`` is: under its ``backendBundleEntry``."""
    root = Path(folder)
    element = read_json_object(root / "e.json")
    if element.get("type") != ELEMENT_TYPE:
        raise AliyunInvalidArguments(
            f"e.json has type {element.get('type')!r}; this client "
            f"only loads {ELEMENT_TYPE!r} elements"
        )
    entry = element.get("backendBundleEntry") or "."
    if not isinstance(entry, str):
        raise AliyunInvalidArguments("e.json backendBundleEntry must be a path")
    return root / entry / "sms.json"


def read_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise AliyunInvalidArguments(f"{path} does not exist") from None
    except (OSError, ValueError):
        raise AliyunInvalidArguments(f"{path} is not readable JSON") from None
    if not isinstance(data, dict):
        raise AliyunInvalidArguments(f"{path} must hold a JSON object")
    return data
