import secrets

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_token_miss_count():
    """The guessing limit counts per address in Redis, which outlives a run; the test client's
    own address starts each test from zero. Tests that make misses use `fresh_address`."""
    cache.delete("intake:token-miss:127.0.0.1")


@pytest.fixture
def fresh_address():
    """An address no other test (or parallel worker) counts misses for."""
    bits = secrets.randbits(24)
    return f"10.{bits >> 16}.{(bits >> 8) & 255}.{bits & 255}"
