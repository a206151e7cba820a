import subprocess
import sys

import pytest

from app_process import ROOT
from avatar_core.settings import SettingsError, load_settings


def test_defaults(monkeypatch):
    for name in ("AVATAR_PROVIDER", "MAX_SESSIONS", "SESSION_IDLE_TIMEOUT_S", "SHARE"):
        monkeypatch.delenv(name, raising=False)
    s = load_settings()
    assert s.avatar_provider == "local" and s.max_sessions >= 1 and not s.share


@pytest.mark.parametrize(("name", "value"), [("MAX_SESSIONS", "0"), ("MAX_SESSIONS", "many"),
                                             ("SESSION_IDLE_TIMEOUT_S", "-5"), ("AVATAR_PROVIDER", "acme"),
                                             ("GRADIO_SERVER_PORT", "99999"), ("DEFAULT_QUALITY", "4k")])
def test_invalid_settings_name_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_app_refuses_to_start_with_an_invalid_setting():
    env = {"PATH": "/usr/bin:/bin", "MAX_SESSIONS": "zero"}
    done = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "MAX_SESSIONS" in done.stderr and "Cannot start" in done.stderr
