"""Report pages: a plotly figure under a header that states the verdict, the limits and why a network failed."""
from __future__ import annotations

import html
from pathlib import Path

from .fsutil import atomic_write_text

STYLE = """<style>
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:16px 24px;color:#222}
h1{font-size:20px;margin:0 0 8px}
.verdict{font-size:16px;font-weight:600;padding:8px 12px;border-radius:4px;display:inline-block;margin:4px 0}
.pass{background:#e6f4ea;color:#137333;border:1px solid #137333}
.fail{background:#fce8e6;color:#a50e0e;border:1px solid #a50e0e}
.info{background:#eef3fb;color:#174ea6;border:1px solid #174ea6}
.limits{margin:6px 0;color:#444}
ul.why{margin:4px 0 8px;color:#a50e0e}
</style>"""


def verdict_header(title: str, passed: bool | None, headline: str, limits: str = "",
                   reasons: list[str] | None = None) -> str:
    """HTML: the page title, the verdict (pass, fail, or None: information only), the limits and the reasons."""
    kind = "info" if passed is None else ("pass" if passed else "fail")
    word = {"info": "", "pass": "PASS: ", "fail": "FAIL: "}[kind]
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<div class="verdict {kind}" id="buckbi-verdict">{word}{html.escape(headline)}</div>']
    if limits:
        parts.append(f'<div class="limits" id="buckbi-limits">Limits: {html.escape(limits)}</div>')
    if reasons:
        parts.append('<ul class="why">' + "".join(f"<li>{html.escape(r)}</li>" for r in reasons[:40]) + "</ul>")
        if len(reasons) > 40:
            parts.append(f"<p>... and {len(reasons) - 40} more (see the CSV beside this page)</p>")
    return "\n".join(parts)


def write_html(fig, path: str | Path, *, self_contained: bool = False, header: str = "") -> Path:
    """Write the figure (under ``header``) atomically; plotly.js goes beside the file (``plotly.min.js``) or
    inline when self-contained, so the page opens offline."""
    path = Path(path)
    if self_contained:
        js = True
    else:
        js = "directory"
        beside = path.parent / "plotly.min.js"
        if not beside.exists():
            from plotly.offline import get_plotlyjs
            atomic_write_text(beside, get_plotlyjs())
    title = html.escape(fig.layout.title.text or path.stem) if fig.layout.title.text else html.escape(path.stem)
    div = fig.to_html(full_html=False, include_plotlyjs=js, config={"responsive": True})
    page = (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title>{STYLE}</head>\n'
            f"<body>\n{header}\n{div}\n</body></html>\n")
    return atomic_write_text(path, page)
