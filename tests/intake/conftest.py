import pytest
from django.core.cache import cache

# Addresses the page tests send from; the guessing limit counts per address in Redis,
# which outlives a test run, so each test starts from zero for all of them.
TEST_ADDRESSES = ("127.0.0.1", "10.9.0.1", "10.9.0.2", "10.9.0.3")


@pytest.fixture(autouse=True)
def _fresh_token_miss_counts():
    keys = [f"intake:token-miss:{address}" for address in TEST_ADDRESSES]
    cache.delete_many(keys)
    yield
    cache.delete_many(keys)
