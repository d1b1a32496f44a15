"""Every report page (training, evaluate, fra, sweep, plan summary and line) renders in headless Chromium at 1280 and
1920 px: its plots drawn, no console error, the verdict at the top and the limits it is judged against on the page.
The pages come from short runs on the fast simulator (``docs/report_pages.py``, which also makes the screenshots in
docs/screenshots)."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from tests.shared import build_once

SPEC = importlib.util.spec_from_file_location("report_pages", Path(__file__).parents[1] / "docs" / "report_pages.py")
pages_tool = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(pages_tool)

pytestmark = [pytest.mark.skipif(pages_tool.CHROMIUM is None, reason="Chromium not installed (Debian: apt-get "
                                 "install chromium; ./buckbi.sh test installs it)"),
              ]

VERDICT = {"train": None, "evaluate": "PASS", "evaluate-fail": "FAIL", "fra": "FAIL", "sweep": None, "plan": "FAIL",
           "plan-line": None}  # None: a verdict box of either kind (information, or depends on the corner)


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    folder = build_once(tmp_path_factory, "report-pages", pages_tool.make_pages)
    return pages_tool.make_pages(folder, only_paths=True)


@pytest.mark.parametrize("width", [1280, 1920])
@pytest.mark.parametrize("name", list(VERDICT))
def test_a_report_page_renders_with_its_verdict_and_limits(pages, name, width):
    dom, log = pages_tool.render(pages[name], width)
    assert not pages_tool.console_errors(log), pages_tool.console_errors(log)
    box = re.search(r'<div class="verdict (pass|fail|info)" id="buckbi-verdict">([^<]*)</div>', dom)
    assert box, f"{name}: no verdict at the top; DOM starts {dom[:400]!r}"
    assert dom.index('id="buckbi-verdict"') < dom.find("main-svg") or "main-svg" not in dom  # above the plots
    if VERDICT[name]:
        assert box.group(2).startswith(VERDICT[name] + ":"), (name, box.group(2))
    if name != "train":
        assert 'id="buckbi-limits"' in dom, f"{name}: the limits are not on the page"
    if name != "plan":  # the plan summary is a table; every other page draws plotly figures
        assert dom.count('class="main-svg"') >= 1, f"{name}: the plot did not render"
    if name == "evaluate-fail":  # a network that cannot regulate: its reason where its figure is
        assert "sse_%" in dom and "FAIL" in dom
    if name == "fra":  # margins marked, the phase-margin limit drawn
        assert "phase margin &gt;= 45 deg" in dom and "PM " in dom
