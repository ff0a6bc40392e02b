"""End to end: ``liveenv dashboard`` serves the app, headless Chromium loads it.

Needs Debian's ``chromium`` (``make browser`` installs it) and Playwright's Python
package; skipped with the reason when either is missing. Marked ``slow`` (out of
``make test``) and ``browser`` (``make test-ci`` runs it: about 15 s).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHART = '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not become healthy in {timeout_s:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop ``liveenv dashboard`` and the Streamlit server it started (its own group)."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.mark.slow
@pytest.mark.browser
def test_the_dashboard_renders_its_title_and_a_chart_in_chromium(tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on PATH: `make browser` installs Debian's chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    no_run = tmp_path / "no-run"  # no run directory: the app opens on the bundled sample run
    log = (tmp_path / "streamlit.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agents.run.cli",
            "dashboard",
            "--run-dir",
            str(no_run),
            "--port",
            str(port),
            "--address",
            "127.0.0.1",
        ],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_healthy(url, proc)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/policies", wait_until="domcontentloaded", timeout=60_000)
            page.wait_for_selector(CHART, timeout=120_000)
            page.wait_for_timeout(1000)  # let the last charts paint
            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
            title, sidebar = page.title(), page.get_by_text("LiveEnv workbench").first
            header = page.get_by_role("heading", name="Policies").first
            assert "LiveEnv workbench" in title and sidebar.is_visible() and header.is_visible()
            assert page.get_by_text("showing the bundled sample run").first.is_visible()
            assert page.locator(CHART).count() >= 1
            browser.close()
        assert shot.stat().st_size > 20_000  # a real rendering, not a blank page
        assert not no_run.exists()  # the dashboard only reads
    finally:
        _stop(proc)
        log.close()
