import pytest
from django.core.cache import cache

from outcomes.models import OutcomeSettings
from tests.factories import PatientFactory


@pytest.fixture(autouse=True)
def _fresh_token_miss_count():
    cache.delete("intake:token-miss:127.0.0.1")


@pytest.fixture
def patient(clinic):
    return PatientFactory(clinic=clinic, given_name="Noah", family_name="Tremblay", email="noah@example.com",
                          email_consent=True)  # fmt: skip


@pytest.fixture
def rhythm(clinic):
    return OutcomeSettings.objects.create(clinic=clinic, baseline_measures=["nprs", "lefs"], repeat_every_weeks=3)


def lefs(total: int) -> dict:
    return {f"q{n}": min(4, max(0, total - 4 * (n - 1))) for n in range(1, 21)}
