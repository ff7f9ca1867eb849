"""Tencent Cloud SMS (API 2021-01-11, ``SendSms``): the provider in one package, one module
per job, shaped like ``aliyun/``.

=============  ==========================================================================
settings.py    ``TencentSettings``: the SMSCODE_TENCENT_* keys, validated once
transport.py   the one door to tencentcloud-sdk-python-sms (lazy import, logs silenced)
sender.py      ``TencentSender``: a verification code to one phone (``SMSCODE_SENDER``)
outcomes.py    the one table of Tencent error codes: what each means to a send
errors.py      ``TencentSmsError``: a failed call, with only safe fields
reports.py     delivery-status callbacks (回执) pushed by Tencent: parsing only
checks.py      ``flask smscode doctor``'s checks of a Tencent Cloud sender
=============  ==========================================================================

This folder may import the package's leaves and ``senders/`` (the contract it implements),
never ``core/``, ``web/``, ``cli/`` or another vendor's folder. The SDK is imported inside
functions only, so an app that sends through Alibaba Cloud never loads it.
"""
