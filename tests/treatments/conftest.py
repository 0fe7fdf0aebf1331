import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Personas get real passwords; PBKDF2's deliberate slowness costs seconds per test here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
