import pytest
from django.core.cache import cache

from intake.views import MISS_LIMIT  # noqa: F401 - imported so a rename breaks loudly here


@pytest.fixture(autouse=True)
def _fresh_token_miss_count():
    """The guessing limit counts per address in Redis; each test starts from zero for the test client's."""
    cache.delete("intake:token-miss:127.0.0.1")
    yield
    cache.delete("intake:token-miss:127.0.0.1")
