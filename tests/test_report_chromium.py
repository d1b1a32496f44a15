"""The training-as-test report renders with its plots in headless Chromium (Debian package ``chromium``)."""
from __future__ import annotations

import base64

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ltspice

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
EPISODES = 2


@pytest.fixture(scope="module")
def training_report(simulator, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    report = out / "training.html"
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/test_training_as_test.py",
         "--buckbi-train-as-test", "--buckbi-episodes", str(EPISODES), "--buckbi-steps", "64", "--buckbi-train-dir", str(out / "run"),
         f"--html={report}", "--self-contained-html", "-q"],
        cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert f"{EPISODES} passed" in res.stdout
    return report


def test_training_run_leaves_its_artefacts(training_report):
    run = training_report.parent / "run"
    assert (run / "log.csv").exists() and (run / "actor_final.pth").exists() and (run / "loss_plot.html").exists()
    html = training_report.read_text()
    # pytest-html keeps each extra as a base64 PNG (inline or in a JSON blob): every one decodes to a real image
    pngs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]{200,})", html)
    pngs += re.findall(r'"content": ?"([A-Za-z0-9+/=]{200,})", ?"format_type": ?"image"', html)
    assert len(pngs) >= 2 * EPISODES, f"{len(pngs)} PNG extras for {EPISODES} episodes"
    for b64 in pngs:
        assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (Debian: apt-get install chromium)")
def test_report_renders_with_plots_in_headless_chromium(training_report, tmp_path):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
             "--virtual-time-budget=5000"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", training_report.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    # pytest-html shows one image per result row at a time (a media viewer steps through the rest)
    images = re.findall(r'<img[^>]+src="data:image/png;base64,([A-Za-z0-9+/=]{200,})', dom)
    assert len(images) >= EPISODES, f"{len(images)} plot images rendered; DOM starts {dom[:300]!r}"
    assert re.search(rf"{EPISODES}\s*Passed", dom, re.IGNORECASE), "the results summary did not render"
    assert re.search(r'<img id="buckbi-loss"[^>]+src="data:image/png;base64,', dom), "no loss curve in the summary"
    for ep in range(1, EPISODES + 1):
        assert f"test_training_episode[ep{ep}]" in dom
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1200,2400", training_report.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20_000  # a rendered page, not a blank one
