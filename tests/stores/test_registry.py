"""The store registry: schemes found through entry points or register_store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flask_smscode import ConfigurationError
from flask_smscode.stores import MemoryStore, register_store, store_from_uri, store_schemes
from flask_smscode.stores import registry as registry_module
from flask_smscode.stores.redis import RedisStore
from flask_smscode.stores.registry import store_class


class TaggedMemory(MemoryStore):
    """A third-party store: the memory store under its own scheme, remembering its URI."""

    @classmethod
    def from_uri(
        cls, uri: str, *, key_prefix: str = "smscode", timeout: float = 1.0, **options: Any
    ) -> TaggedMemory:
        store = cls(key_prefix=key_prefix)
        store.uri = uri
        store.options = options
        return store


@pytest.fixture
def tagged() -> Iterator[None]:
    register_store("tagged", TaggedMemory)
    try:
        yield
    finally:
        registry_module._registered.pop("tagged", None)


def test_every_documented_scheme_is_registered() -> None:
    schemes = set(store_schemes())
    assert {
        "memory",
        "redis",
        "rediss",
        "redis+unix",
        "redis+cluster",
        "rediss+cluster",
        "redis+sentinel",
        "rediss+sentinel",
    } <= schemes
    assert store_class("memory") is MemoryStore
    assert store_class("REDIS") is RedisStore  # schemes are case-insensitive


def test_a_registered_scheme_builds_its_store(tagged: None) -> None:
    store = store_from_uri("tagged://anything", key_prefix="p", opt=1)
    assert isinstance(store, TaggedMemory)
    assert store.uri == "tagged://anything" and store.options == {"opt": 1}
    assert store.keys.phone("+8613800138000").startswith("p:")


def test_an_unknown_scheme_names_the_setting_and_the_schemes() -> None:
    with pytest.raises(ConfigurationError) as caught:
        store_from_uri("mongodb://localhost")
    message = str(caught.value)
    assert message.startswith("SMSCODE_STORAGE_URI: unsupported scheme 'mongodb'")
    assert "memory://" in message and "redis+sentinel://" in message
