"""Alibaba Cloud PNVS (号码认证服务, product Dypnsapi): the ``pnvs`` sender.

Inside the Alibaba vendor folder because it shares the account, the AccessKey, the RPC
signature and the RPC door (:mod:`flask_smscode.aliyun.transport`) with Dysmsapi; its
settings, its table of codes, its sender and its doctor checks are its own. Imported only
through the sender registry (entry point ``pnvs``), so an app that does not use it never
loads it.
"""
