"""What 'regulates' means: the thresholds of evaluate, sweep, fra and the regulation check, and which rows miss them."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # tables are DataFrames; pandas loads when a command judges one, not with the CLI's --help
    import pandas as pd

STEPS_NAMES = ("up", "down")  # the events of the step scenarios (load step, line step): there, and back

# The thresholds as options (the CLI's --max-sse ..., the plugin's --buckbi-max-sse ...): field, option, help.
OPTIONS = (
    ("sse_pct", "max-sse", "largest steady-state error, %% of vref", True),
    ("overshoot_pct", "max-overshoot", "largest overshoot, %% of vref", True),
    ("step_deviation_pct", "max-step-deviation", "largest |Vout-vref| after a step, %% of vref", True),
    ("recovery_ms", "max-recovery", "longest time back inside 2 %% after a step, ms", True),
    ("min_phase_margin_deg", "min-phase-margin", "loop gain: smallest phase margin, degrees", False),
    ("min_gain_margin_dB", "min-gain-margin", "loop gain: smallest gain margin, dB", False),
)


@dataclass(frozen=True)
class Thresholds:
    """What 'regulates' means in the suite's regulation check and the sweep's outline."""

    sse_pct: float = 1.0
    overshoot_pct: float = 5.0
    step_deviation_pct: float = 10.0
    recovery_ms: float = 10.0
    min_phase_margin_deg: float = 45.0  # the loop gain (scenario "fra"): smallest allowed margins
    min_gain_margin_dB: float = 6.0

    def limit(self, figure: str) -> float:
        """The threshold of a figure (settling: only that it settles; lower limits for the margins)."""
        return {"sse_%": self.sse_pct, "overshoot_%": self.overshoot_pct, "settle_ms": math.inf,
                "phase_margin_deg": self.min_phase_margin_deg, "gain_margin_dB": self.min_gain_margin_dB,
                "crossover_Hz": math.inf, "gain_margin_Hz": math.inf}.get(
            figure, self.step_deviation_pct if figure.endswith("_dev_%") else self.recovery_ms)

    def text(self, scenario: str = "startup") -> str:
        """The thresholds a scenario's verdict is against, in words."""
        if scenario == "fra":
            return f"phase margin >= {self.min_phase_margin_deg:g} deg, gain margin >= {self.min_gain_margin_dB:g} dB"
        words = f"steady-state error <= {self.sse_pct:g} %, overshoot <= {self.overshoot_pct:g} %, settles"
        if scenario in ("startup", "longrun"):
            return words
        return words + (f", step deviation <= {self.step_deviation_pct:g} %, recovery <= {self.recovery_ms:g} ms")

    def misses(self, table: pd.DataFrame, who: str = "nn") -> pd.DataFrame:
        """Rows of an evaluate table where ``who`` misses a threshold (or failed), with a 'misses' column."""
        limits = {"sse_%": self.sse_pct, "overshoot_%": self.overshoot_pct, "settle_ms": math.inf}
        for n in STEPS_NAMES:
            limits |= {f"{n}_dev_%": self.step_deviation_pct, f"{n}_rec_ms": self.recovery_ms}
        reasons = []
        for _, row in table.iterrows():
            why = [row[f"{who}_error"]] if isinstance(row.get(f"{who}_error"), str) and row[f"{who}_error"] else []
            if not why and row.get("status", "ok") != "ok":  # a sweep point whose task failed as a whole
                why.append(f"run failed: {row.get('error') or row.get('status')}")
            for col, lim in limits.items():
                value = row.get(f"{who}_{col}")
                if value is None:
                    continue  # a start-up table has no load-step columns
                if not math.isfinite(float(value)):
                    why.append(f"{col} never" if col.endswith("_ms") else f"{col} missing")
                elif value > lim:
                    why.append(f"{col} {value:.3g} > {lim:g}")
            if f"{who}_phase_margin_deg" in row:  # the loop gain: lower limits; no phase crossover: no gain margin
                pm, gm = row[f"{who}_phase_margin_deg"], row.get(f"{who}_gain_margin_dB")
                if not math.isfinite(float(pm)):
                    why.append("no crossover in the measured range")
                elif pm < self.min_phase_margin_deg:
                    why.append(f"phase_margin_deg {pm:.3g} < {self.min_phase_margin_deg:g}")
                if gm is not None and math.isfinite(float(gm)) and gm < self.min_gain_margin_dB:
                    why.append(f"gain_margin_dB {gm:.3g} < {self.min_gain_margin_dB:g}")
            reasons.append("; ".join(why))
        out = table.assign(misses=reasons)
        return out[out["misses"] != ""]


def add_threshold_options(add, prefix: str = "", transient: bool = True, loop_gain: bool = True) -> None:
    """Declare the thresholds with ``add(flag, type=float, default=..., help=...)`` (argparse or pytest)."""
    defaults = Thresholds()
    for field, option, words, is_transient in OPTIONS:
        if (is_transient and transient) or (not is_transient and loop_gain):
            default = getattr(defaults, field)
            add(f"--{prefix}{option}", type=float, default=default, help=f"threshold: {words} (default {default:g})")


def from_options(get, prefix: str = "") -> Thresholds:
    """The Thresholds a set of options holds (``get(dest)`` returns None for one a command lacks: its default)."""
    values = {}
    for field, option, _, _ in OPTIONS:
        value = get(f"{prefix}{option}".replace("-", "_"))
        if value is not None:
            values[field] = value
    return Thresholds(**values)


def thresholds_header(title: str, table: pd.DataFrame, th: Thresholds, scenario: str, describe, note: str = "") -> str:
    """A page's verdict against ``th``: a line per row the NN misses (``describe(row)`` names the row)."""
    from ..util.html import verdict_header
    misses = th.misses(table)
    reasons = [f"{describe(r)}: {r.misses}" for r in misses.itertuples()]
    headline = (f"the NN meets the thresholds at all {len(table)} points" if not reasons else
                f"the NN misses the thresholds at {len(reasons)} of {len(table)} points")
    return verdict_header(title, not reasons, headline, th.text(scenario) + note, reasons)
