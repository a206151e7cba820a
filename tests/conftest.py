import pytest

# fixtures that start a process: their tests are integration
PROCESS_FIXTURES = {"browser", "llm_server", "app_with_llm"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium, shared by a module's tests (skipped without it, except in CI)."""
    from tests.support.chromium import launched

    yield from launched()


@pytest.fixture(scope="module")
def llm_server():
    """The OpenAI-compatible stand-in (tests/support/openai_server.py), per module."""
    from tests.support.openai_process import OpenAIServerProcess

    server = OpenAIServerProcess()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app_with_llm(llm_server):
    """The app (offline avatar) answering Talk with the LLM stand-in."""
    from tests.support.app_process import AppProcess

    app = AppProcess({"OPENAI_BASE_URL": llm_server.base_url, "OPENAI_API_KEY": "test-key"}).wait_ready()
    yield app
    app.stop()
