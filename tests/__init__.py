import pytest

# Helper modules whose plain `assert`s should report their values like the tests' own.
pytest.register_assert_rewrite("tests.fhir_validation")
