"""Make every report page buckbi writes (training, evaluate, fra, sweep, plan summary and one plan line) on the fast
simulator, and screenshot each in headless Chromium: ``python docs/report_pages.py [OUT] [--shots docs/screenshots]``.

The test ``tests/test_report_pages.py`` builds the same pages and checks them in Chromium."""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import torch

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files", "--hide-scrollbars",
         "--virtual-time-budget=8000"]


def flat_network(path: Path) -> Path:
    """A network that ignores its inputs (duty 0.2): it cannot regulate, so its pages show a FAIL and why."""
    from buckbi.nn.checkpoint import save_checkpoint, seed_actor
    net = seed_actor()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net[4].bias.fill_(-1.386)
    save_checkpoint(path, net)
    return path


def buckbi(*args: str, ok: tuple[int, ...] = (0, 1)) -> None:
    res = subprocess.run([sys.executable, "-m", "buckbi", *args], capture_output=True, text=True, timeout=1200)
    if res.returncode not in ok:
        raise RuntimeError(f"buckbi {' '.join(args)} exited {res.returncode}: {res.stderr[-2000:]}")


def make_pages(out: Path, only_paths: bool = False) -> dict[str, Path]:
    """Every page, from short runs on the fast simulator (``only_paths``: made before); returns name -> HTML file."""
    if only_paths:
        return _paths(out)
    out.mkdir(parents=True, exist_ok=True)
    flat = flat_network(out / "flat.pth")
    pwl = ("--simulator", "pwl")
    buckbi("train", *pwl, "--episodes", "3", "--steps", "256", "--epochs", "20", "--seed", "1",
           "--spice-check-every", "0", "--quiet", "--workdir", str(out / "train"), ok=(0,))
    buckbi("evaluate", "--actor", "seed-pretrained", *pwl, "--points", "3", "--scenario", "loadstep",
           "--out", str(out / "evaluate"))
    buckbi("evaluate", "--actor", str(flat), *pwl, "--points", "2", "--steps", "512", "--out", str(out / "evaluate-fail"))
    buckbi("fra", "--actor", "seed-pretrained", *pwl, "--point", "vin=200,vref=100,ro=20", "--point", "vin=250,vref=60,ro=5",
           "--per-octave", "2", "--out", str(out / "fra"))
    buckbi("sweep", "--actor", "seed-pretrained", *pwl, "--grid", "vin=150:250:4,vref=50:140:4,ro=20", "--steps", "1024",
           "--jobs", "1", "--quiet", "--out", str(out / "sweep"))
    buckbi("testplan", "default", "--actor", "seed-pretrained", *pwl, "--only", "startup", "--jobs", "1", "--quiet",
           "--out", str(out / "plan"))
    return _paths(out)


def _paths(out: Path) -> dict[str, Path]:
    line = sorted((out / "plan" / "plots").glob("startup*.html"))[0]
    return {"train": out / "train" / "loss_plot.html", "evaluate": out / "evaluate" / "evaluate_plot.html",
            "evaluate-fail": out / "evaluate-fail" / "evaluate_plot.html", "fra": out / "fra" / "fra.html",
            "sweep": out / "sweep" / "sweep.html", "plan": out / "plan" / "report.html", "plan-line": line}


def render(page: Path, width: int) -> tuple[str, str]:
    """(the DOM after scripts ran, Chromium's console log) at ``width`` px."""
    res = subprocess.run([CHROMIUM, *FLAGS, f"--window-size={width},1200", "--enable-logging=stderr", "--v=0",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180)
    return res.stdout, res.stderr


def console_errors(log: str) -> list[str]:
    """The page's own console errors (Chromium's start-up chatter about GPUs and D-Bus left out)."""
    return [line for line in log.splitlines() if "CONSOLE" in line and re.search(r"error|uncaught", line, re.I)]


def screenshot(page: Path, png: Path, width: int = 1400, height: int = 1800) -> Path:
    subprocess.run([CHROMIUM, *FLAGS, f"--window-size={width},{height}", f"--screenshot={png}", page.as_uri()],
                   capture_output=True, timeout=180)
    return png


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="reports/pages", help="folder for the runs (default reports/pages)")
    ap.add_argument("--shots", default=str(Path(__file__).parent / "screenshots"), help="folder for the PNGs")
    args = ap.parse_args()
    if CHROMIUM is None:
        print("headless Chromium is needed (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    pages = make_pages(Path(args.out))
    Path(args.shots).mkdir(parents=True, exist_ok=True)
    for name, page in pages.items():
        print(screenshot(page, Path(args.shots) / f"{name}.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
