import pytest

PROCESS_FIXTURES = {"browser", "llm_server"}  # fixtures that start a process: their tests are integration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium, shared by a module's tests (skipped without it, except in CI)."""
    from tests.support.chromium import launched

    yield from launched()
