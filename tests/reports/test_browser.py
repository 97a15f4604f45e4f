"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``) opens
it offline, logs no console error, and every plot renders.

Bokeh draws each plot on a canvas inside a shadow root, which ``--dump-dom`` does not
serialize; what it does show is each plot's container holding the view Bokeh built
for it, and the console shows Bokeh's "document idle" line, logged once every view
has finished rendering. In CI (``CI=true``) a missing Chromium fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from windtunnel.reports import write_report

from .conftest import HOSTILE


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; `make test` installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium); CI fails here instead")
    return found


def _open(page: Path, tmp_path: Path) -> tuple[str, str]:
    """The DOM after the page ran, and Chromium's log with the page's console lines."""
    done = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


_BOKEH_INFO = re.compile(r'"\[bokeh [\d.]+\] (setting log level to: \'info\'|document idle at \d+ ms)"')


def _console(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_a_console_error_is_caught(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text('<html><body><script>console.error("boom")</script></body></html>')
    _, log = _open(page, tmp_path)
    assert [line for line in _console(log) if not _BOKEH_INFO.search(line)]


@pytest.mark.parametrize("which", ["results", "hostile"])
def test_every_plot_renders_without_a_console_error(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    page = write_report(request.getfixturevalue(which), tmp_path / "report.html")
    roots = re.findall(r'data-root-id="([^"]+)"', page.read_text())
    dom, log = _open(page, tmp_path)
    console = _console(log)
    # Chromium's log does not say a console line's level (console.error shows as INFO),
    # so any line but Bokeh's own two info lines fails: errors, warnings, uncaught throws.
    unexpected = [line for line in console if not _BOKEH_INFO.search(line)]
    assert unexpected == []
    assert any("document idle" in line for line in console), console
    assert len(roots) >= 7
    for root in roots:
        # Rendered: Bokeh replaced the empty container's content with its view's host element.
        assert re.search(rf'data-root-id="{root}"[^>]*><div class="bk-', dom), f"plot {root} did not render"
    if which == "hostile":
        assert HOSTILE not in dom
        assert "&lt;script&gt;alert" in dom  # shown as text, never run
