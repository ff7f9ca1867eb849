"""Compatibility: the Alibaba Cloud sender lives in :mod:`flask_smscode.aliyun.sender`."""

from __future__ import annotations

from ..aliyun.sender import AliyunSender

__all__ = ["AliyunSender"]
