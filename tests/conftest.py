import pytest


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium, shared by a module's tests (skipped without it, except in CI)."""
    from tests.support.chromium import launched

    yield from launched()
