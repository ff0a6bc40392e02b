"""The ``browser`` marker: the end-to-end test in headless Chromium (``make test-ci``
selects it with ``-m "not slow or browser"``)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: loads the dashboard in headless Chromium")
