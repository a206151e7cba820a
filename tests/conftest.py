import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium, shared by a module's tests (skipped without it, except in CI)."""
    from chromium import launched

    yield from launched()
