import re
import subprocess
import sys

import pytest

from avatar_core.settings import Settings, SettingsError, load_settings
from avatar_core.talk.llm import HF_DEFAULT_MODEL, OPENAI_DEFAULT_MODEL
from tests.support.app_process import ROOT

NAMES = [name.upper() for name in Settings.model_fields]


def readme_defaults() -> dict[str, str]:
    """The Default column of README.md's settings table, by variable."""
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| ([^|]+) \|", (ROOT / "README.md").read_text(), re.MULTILINE)
    return {name: cell.strip() for name, cell in rows}


# Defaults the README describes in words: (the README's words, what the setting holds)
DESCRIBED = {
    "OPENAI_BASE_URL": ("OpenAI", None),
    "TURN_CREDENTIALS_URL": ("the provider's", None),
    "LLM_MODEL": (f"`{OPENAI_DEFAULT_MODEL}` (OpenAI), `{HF_DEFAULT_MODEL}` (HF router)", None),
    "STT_MODEL": ("the bundled one", None),
    "VIDEO_DELAY_MS": ("the provider's", None),
}


def test_defaults_are_the_documented_ones(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    settings, documented = load_settings(), readme_defaults()
    # a few held here too, so the code and the README cannot drift together unnoticed
    assert (settings.avatar_provider, settings.max_sessions, settings.session_idle_timeout_s) == ("local", 6, 300)
    assert (settings.gradio_server_name, settings.gradio_server_port, settings.default_quality) == (
        "127.0.0.1", 7860, "low")
    assert sorted(documented) == sorted(NAMES)  # every setting has a row, and no row is stale
    for name in NAMES:
        value, cell = getattr(settings, name.lower()), documented[name]
        if name in DESCRIBED:
            assert (cell, value) == DESCRIBED[name], name
        elif name == "SYSTEM_PROMPT":
            assert cell == "a friendly demo avatar, one or two short spoken sentences"
            assert "friendly demo avatar" in value and "one or two short" in value
        elif value is None or value == "":
            assert cell == "(none)", name
        elif isinstance(value, bool):
            assert cell == f"`{int(value)}`", name
        elif isinstance(value, int | float):
            assert cell == f"`{value:g}`", name
        else:
            assert cell == f"`{value}`", name


def test_env_file_is_read(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text("MAX_SESSIONS=7\nSHARE=1\n")
    s = load_settings()
    assert s.max_sessions == 7 and s.share


def test_every_setting_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name in NAMES:
        assert f"`{name}`" in readme


def test_heygen_needs_a_key_and_the_key_is_never_echoed(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AVATAR_PROVIDER", "heygen")
    monkeypatch.delenv("HEYGEN_API_KEY", raising=False)
    with pytest.raises(SettingsError, match="HEYGEN_API_KEY must be set when AVATAR_PROVIDER=heygen"):
        load_settings()
    monkeypatch.setenv("HEYGEN_API_KEY", "sk-very-secret-value")
    monkeypatch.setenv("HEYGEN_BASE_URL", "not a url")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "HEYGEN_BASE_URL" in str(err.value) and "very-secret" not in str(err.value)
    monkeypatch.setenv("HEYGEN_BASE_URL", "http://127.0.0.1:8790")
    assert "very-secret" not in repr(load_settings())


@pytest.mark.parametrize(("name", "value"), [("MAX_SESSIONS", "0"), ("MAX_SESSIONS", "many"),
                                             ("SESSION_IDLE_TIMEOUT_S", "-5"), ("AVATAR_PROVIDER", "acme"),
                                             ("GRADIO_SERVER_PORT", "99999"), ("DEFAULT_QUALITY", "4k")])
def test_invalid_settings_name_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


@pytest.mark.integration
def test_app_refuses_to_start_with_an_invalid_setting():
    env = {"PATH": "/usr/bin:/bin", "MAX_SESSIONS": "zero"}
    done = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "MAX_SESSIONS" in done.stderr and "Cannot start" in done.stderr


def test_llm_choice_from_settings(monkeypatch, tmp_path):
    from avatar_core.talk.llm import HF_DEFAULT_MODEL, HF_ROUTER_URL, OPENAI_DEFAULT_MODEL, llm_from

    monkeypatch.chdir(tmp_path)
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    assert llm_from(load_settings()) is None  # nothing configured: Talk explains how
    monkeypatch.setenv("HF_TOKEN", "hf-test")
    hf = llm_from(load_settings())
    assert (hf.base_url, hf.model) == (HF_ROUTER_URL, HF_DEFAULT_MODEL)  # a Space with HF_TOKEN alone
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    openai_llm = llm_from(load_settings())
    assert (openai_llm.base_url, openai_llm.model) == (None, OPENAI_DEFAULT_MODEL)  # an OpenAI key wins
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("LLM_MODEL", "llama3.2")
    local = llm_from(load_settings())
    assert (local.base_url, local.model) == ("http://127.0.0.1:11434/v1", "llama3.2")
