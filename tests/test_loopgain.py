"""Loop gain by injection (buckbi.loopgain): the pure pieces on known signals, then real runs: the teacher against
its averaged small-signal model, a network with a known small-signal response against its formula, linearity,
and ngspice against the fast simulator."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tests.shared import linear_actor

from buckbi.nn.actors import resolve_actor
from buckbi.converters.buck import EpisodeParams
from buckbi.loopgain import AMPLITUDE, FraError, fourier, frequencies, margins, measure, parse_point, plan_for, settle_for
from buckbi.loopgain.averaged import linear_nn_loop_gain, teacher_loop_gain

POINTS = {  # continuous conduction at all three (the averaged model's premise)
    "light": EpisodeParams(vin=240.0, ro=24.0, Lo=60e-6, vref=60.0),
    "mid": EpisodeParams(vin=200.0, ro=20.0, Lo=50e-6, vref=100.0),
    "heavy": EpisodeParams(vin=160.0, ro=10.0, Lo=30e-6, vref=140.0),
}
MODEL_DB, MODEL_DEG = 1.5, 5.0  # the teacher against its averaged model, fstart..fsw/20
AGREE_DB, AGREE_DEG = 0.5, 3.0  # ngspice (T/400, buckbi fra's default) against the fast simulator, up to 10 kHz
# POP + AC against ngspice: measured within 0.41 dB and 1.8 degrees (teacher and NN, where the NN's 0.2 V injection is
# linear); at the light point the NN's injection at 0.2 V is not linear at 2.56 kHz, next to its crossover (the fast
# simulator at 0.2 V is 1.6 dB / 15.7 degrees from POP there, at 0.05 V within 0.03 dB): those frequencies are left
# out, and counted. Tolerance: 2x the measured.
POP_SPICE_DB, POP_SPICE_DEG = 0.8, 3.6
# The NN is compared at 0.2 V: ngspice's step error is a fixed few 0.1 mV in V(vsense), so a larger response shows
# the engines, not that error (measured: the pretrained actor at 0.05 V, mid point, 2.56 kHz: 1.91 dB on the fast
# simulator, 2.33-2.67 dB in ngspice with the step and amplitude; at 0.2 V within 0.34 dB). The network is linear
# there at 0.2 V on the fast simulator (halving it: <= 0.15 dB; measured at all three points). The teacher is
# compared at 0.05 V (the default): at 0.2 V ngspice's teacher loop moves by 0.6 dB at 2.56 kHz (mid point) where the
# fast simulator's stays within 0.01 dB from 0.05 to 0.2 V; not explained yet (README).
AGREE_AMPLITUDE = {"nn": 0.2, "teacher": 0.05}
FORMULA_DB, FORMULA_DEG = 0.2, 1.0  # a linear network against its formula
LINEAR_DB = 0.2  # halving the amplitude, below 10 kHz


def phase_deg(T: np.ndarray) -> np.ndarray:
    return np.degrees(np.unwrap(np.angle(T)))


def by(table: pd.DataFrame, who: str) -> pd.DataFrame:
    return table[table["controller"] == who].sort_values("f_Hz")


# ---- pure pieces -------------------------------------------------------------------------------------------------

def test_frequencies_and_plans():
    f = frequencies(10, 25e3, 3)
    assert f[0] == 10 and f[-1] == pytest.approx(25e3) and len(f) == 35
    np.testing.assert_allclose(np.diff(np.log2(f)), np.log2(2500) / 34)
    for bad in [(0, 100), (100, 10), (10, 30e3)]:
        with pytest.raises(FraError, match="fsw/2"):
            frequencies(*bad)
    p = plan_for(10.0)
    assert p.window == pytest.approx(0.1) and p.settle == 10e-3  # one whole period at 10 Hz
    assert plan_for(1e3).window == pytest.approx(2e-3)  # at least 2 ms, whole periods
    assert plan_for(1.3e3).window * 1.3e3 == pytest.approx(3)


def test_the_start_up_before_the_window_is_the_converters_soft_start_then_400_periods():
    assert settle_for(50e3, 2.0) == 10e-3  # the reference buck's 10 ms, as before converters had files
    assert settle_for(200e3, 1.0) == pytest.approx(3e-3)  # buck-48v: 1 ms soft start + 2 ms
    p = plan_for(1e3, settle=settle_for(200e3, 0.5), soft_start_ms=0.5)
    assert p.settings() == {"finj": 1e3, "ainj": AMPLITUDE, "soft_start_ms": 0.5}
    assert p.steps(200e3) == math.ceil((2.5e-3 + 2e-3) * 200e3) + 1


def test_the_example_teacher_injected_on_the_fast_model_settles_with_its_own_soft_start(tmp_path):
    from buckbi.converters.buck.design import load_converter
    from buckbi.loopgain.pop import loop_gain
    conv = load_converter("buck-48v")
    point, f = conv.params(**conv.centre), np.array([3e3, 1e4])
    table = measure(None, [point], f, tmp_path, "pwl", controllers=("teacher",), amplitude=0.02,
                    soft_start_ms=conv.soft_start_ms).table
    assert (table["error"] == "").all(), table["error"].tolist()  # settled 100 periods before the 3 ms window
    pop = loop_gain("teacher", None, point, f)
    assert np.abs(table["gain_dB"].to_numpy() - pop.gain_dB).max() <= POP_SPICE_DB


def test_fourier_takes_the_component_and_subtracts_the_reference():
    t = np.arange(0, 0.05, 1e-6)
    drift = 0.3 * t / 0.05  # a slow settling the injection must not see
    wave = pd.DataFrame({"time": t, "v": 0.2 * np.cos(2 * np.pi * 500 * t - 0.7) + drift})
    ref = pd.DataFrame({"time": t, "v": drift})
    X = fourier(wave, "v", 500.0, 0.01, 0.014, ref)
    assert abs(X) == pytest.approx(0.2, rel=1e-4) and np.angle(X) == pytest.approx(-0.7, abs=1e-4)
    assert abs(abs(fourier(wave, "v", 500.0, 0.01, 0.014)) - 0.2) > 1e-3  # without it the drift leaks in


def test_margins_of_a_known_loop_gain():
    # T = K / (s (1 + s/p)): crossover and phase margin in closed form; the phase never reaches -180.
    K, pole = 2 * np.pi * 1e3, 2 * np.pi * 5e3
    f = np.geomspace(10, 25e3, 60)
    s = 2j * np.pi * f
    m = margins(f, K / (s * (1 + s / pole)))
    wc = pole * math.sqrt((math.sqrt(1 + 4 * K ** 2 / pole ** 2) - 1) / 2)
    assert m.crossover_Hz == pytest.approx(wc / (2 * np.pi), rel=0.02)
    assert m.phase_margin_deg == pytest.approx(90 - math.degrees(math.atan(wc / pole)), abs=0.5)
    assert math.isnan(m.gain_margin_dB) and math.isnan(m.gain_margin_Hz)
    # with a delay the phase crosses -180: a gain margin exists
    m2 = margins(f, K / (s * (1 + s / pole)) * np.exp(-s * 40e-6))
    assert m2.gain_margin_dB > 0 and 1e3 < m2.gain_margin_Hz < 25e3


def test_points_are_read_with_their_keys():
    p = parse_point("vin=180,vref=90,ro=12,Lo=40e-6")
    assert (p.vin, p.vref, p.ro, p.Lo) == (180.0, 90.0, 12.0, 40e-6)
    assert parse_point("vref=60").vin == 200.0
    with pytest.raises(FraError, match="must be below vin"):
        parse_point("vin=100,vref=120")
    with pytest.raises(FraError, match="cannot read"):
        parse_point("vin:200")


# ---- the fast simulator ------------------------------------------------------------------------------------------

p_actor = linear_actor


def test_a_linear_network_gives_the_loop_gain_its_formula_predicts(tmp_path):
    p, f = POINTS["mid"], frequencies(10, 2500, 1)
    tables = {k: by(measure(p_actor(k), [p], f, tmp_path, "pwl", controllers=("nn",)).table, "nn") for k in (-0.5, -1)}
    for k, t in tables.items():
        T = linear_nn_loop_gain(f, p, k)
        assert np.abs(t["gain_dB"].to_numpy() - 20 * np.log10(np.abs(T))).max() <= FORMULA_DB
        assert np.abs(t["phase_deg"].to_numpy() - phase_deg(T)).max() <= FORMULA_DEG
    # twice the gain in the network: +6.02 dB, the same phase, at every frequency
    np.testing.assert_allclose(tables[-1]["gain_dB"].to_numpy() - tables[-0.5]["gain_dB"].to_numpy(),
                               20 * math.log10(2), atol=0.02)
    np.testing.assert_allclose(tables[-1]["phase_deg"].to_numpy(), tables[-0.5]["phase_deg"].to_numpy(), atol=0.1)


@pytest.mark.parametrize("who", ["nn", "teacher"])
def test_halving_the_amplitude_moves_no_gain_by_more_than_0_2_db(tmp_path, who):
    f = frequencies(10, 10e3, 1)
    t = measure(resolve_actor("seed-pretrained"), [POINTS["mid"]], f, tmp_path, "pwl", controllers=(who,),
                check_linearity=True).table
    assert t["half_amplitude_dB"].max() <= LINEAR_DB and t["linear"].all()


def test_a_loop_that_does_not_settle_before_the_window_is_reported(tmp_path):
    # A network that holds the duty at 0.05 never brings Vout to vref: the point is refused, per frequency.
    t = measure(p_actor(0.0, b=0.05), [POINTS["mid"]], [1e3], tmp_path, "pwl", controllers=("nn",)).table
    assert t["error"].str.contains("does not reach steady state").all() and t["gain_dB"].isna().all()
    with pytest.raises(FraError, match="amplitude"):
        measure(None, [POINTS["mid"]], [1e3], tmp_path, "pwl", amplitude=0.0)


# ---- ngspice -----------------------------------------------------------------------------------------------------

SPICE_F = frequencies(40, 10240, 1)  # 40 Hz .. 10 kHz, an octave apart (the full range: buckbi fra, README)


@pytest.fixture(scope="module")
def spice_and_fast(simulator, tmp_path_factory):
    """NN (the pretrained actor) and teacher loop gains at the three points, in ngspice and on the fast simulator,
    both from the same fixed start-up (the engines compared on the same runs; the default start-up would wait out the
    seed-pretrained actor's slow mode, 5 x 250-500 periods, which costs ngspice minutes and compares nothing more)."""
    from buckbi.loopgain import settle_for
    actor, out = resolve_actor("seed-pretrained"), {}
    for name, p in POINTS.items():
        for sim in ("spice", "pwl"):
            engine = simulator if sim == "spice" else "pwl"
            out[name, sim] = pd.concat([
                measure(actor, [p], SPICE_F, tmp_path_factory.mktemp(f"{name}_{sim}_{who}"), engine, jobs=2,
                        amplitude=AGREE_AMPLITUDE[who], controllers=(who,), settle=settle_for(p.fsw)).table
                for who in AGREE_AMPLITUDE])
    return out


@pytest.mark.ltspice
@pytest.mark.parametrize("point", list(POINTS))
def test_teacher_loop_gain_matches_its_averaged_model_in_ngspice(spice_and_fast, point):
    t = by(spice_and_fast[point, "spice"], "teacher")
    t = t[t["f_Hz"] <= POINTS[point].fsw / 20]
    T = teacher_loop_gain(t["f_Hz"].to_numpy(), POINTS[point])
    d_db = t["gain_dB"].to_numpy() - 20 * np.log10(np.abs(T))
    d_deg = t["phase_deg"].to_numpy() - phase_deg(T)
    assert np.abs(d_db).max() <= MODEL_DB, f"gain - model (dB): {np.round(d_db, 2)}"
    assert np.abs(d_deg).max() <= MODEL_DEG, f"phase - model (deg): {np.round(d_deg, 1)}"


@pytest.mark.ltspice
@pytest.mark.parametrize("point", list(POINTS))
@pytest.mark.parametrize("who", ["nn", "teacher"])
def test_ngspice_and_the_fast_simulator_agree_on_the_loop_gain(spice_and_fast, point, who):
    a, b = by(spice_and_fast[point, "spice"], who), by(spice_and_fast[point, "pwl"], who)
    assert (a["error"] == "").all() and (b["error"] == "").all()
    d_db = np.abs(a["gain_dB"].to_numpy() - b["gain_dB"].to_numpy())
    d_deg = np.abs(a["phase_deg"].to_numpy() - b["phase_deg"].to_numpy())
    assert d_db.max() <= AGREE_DB, f"{who} at {point}: |ngspice - pwl| dB {np.round(d_db, 2)}"
    assert d_deg.max() <= AGREE_DEG, f"{who} at {point}: |ngspice - pwl| deg {np.round(d_deg, 1)}"


# ---- the regulation check and the CLI ----------------------------------------------------------------------------

pytest_plugins = ["pytester"]


def test_the_regulation_check_fails_on_a_small_phase_margin_with_a_table(pytester):
    args = ["--pyargs", "buckbi.checks.test_regulation", "--buckbi-simulator", "pwl", "--buckbi-actor", "seed-pretrained",
            "--buckbi-regulation-scenarios", "fra", "--buckbi-regulation-points", "1", "-p", "no:cacheprovider", "-q"]
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*1 of 1 held-out points miss (fra*", "*phase_margin_deg 1?.? < 45*"])
    pytester.runpytest_subprocess(*args, "--buckbi-min-phase-margin", "10", "--buckbi-min-gain-margin", "3").assert_outcomes(passed=1)


def test_fra_cli_writes_bode_data_margins_and_plots(tmp_path):
    import subprocess
    import sys
    out = tmp_path / "fra"
    res = subprocess.run([sys.executable, "-m", "buckbi", "fra", "--actor", "seed-pretrained", "--simulator", "pwl",
                          "--point", "vin=200,vref=100,ro=20,Lo=50e-6", "--fstart", "100", "--fend", "10e3",
                          "--per-octave", "2", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 1 and "verdict: FAIL" in res.stdout, res.stderr  # the pre-round actor: PM < 45 deg
    assert "phase_margin_deg" in res.stderr
    fra, marg = pd.read_csv(out / "fra.csv"), pd.read_csv(out / "margins.csv")
    assert {"point", "vin", "vref", "ro", "Lo", "f_Hz", "nn_gain_dB", "nn_phase_deg", "teacher_gain_dB",
            "teacher_phase_deg"} <= set(fra.columns) and len(fra) == 15
    assert set(marg["controller"]) == {"nn", "teacher"}
    teacher = marg[marg["controller"] == "teacher"].iloc[0]
    assert 1e3 < teacher["crossover_Hz"] < 5e3 and 60 < teacher["phase_margin_deg"] < 120
    assert "plotly.min.js" in (out / "fra.html").read_text() and "crossover" in res.stdout
    bad = subprocess.run([sys.executable, "-m", "buckbi", "fra", "--actor", "seed-pretrained", "--simulator", "pwl",
                          "--fend", "30e3", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "fsw/2" in bad.stderr and "Traceback" not in bad.stderr


def test_fra_on_dask_gives_the_local_table(tmp_path):
    from buckbi.loopgain import measure_on_dask
    from buckbi.sweep import dask_client
    f, p = [200.0, 2000.0], POINTS["mid"]
    local = measure(resolve_actor("seed-pretrained"), [p], f, tmp_path, "pwl").table
    with dask_client(None, 1) as client:
        remote = measure_on_dask(resolve_actor("seed-pretrained"), [p], f, client, "pwl").table
    cols = ["point", "controller", "f_Hz", "gain_dB", "phase_deg"]
    pd.testing.assert_frame_equal(local[cols].sort_values(cols[:3]).reset_index(drop=True),
                                  remote[cols].sort_values(cols[:3]).reset_index(drop=True))


@pytest.mark.ltspice
@pytest.mark.parametrize("point", list(POINTS))
@pytest.mark.parametrize("who", ["nn", "teacher"])
def test_pop_gives_the_loop_gain_ngspice_measures(spice_and_fast, point, who):
    """POP + AC on the fast model against the injection in ngspice (T/400), 40 Hz .. 10 kHz."""
    from buckbi.loopgain.pop import loop_gain
    a, fast = by(spice_and_fast[point, "spice"], who), by(spice_and_fast[point, "pwl"], who)
    lg = loop_gain(who, resolve_actor("seed-pretrained") if who == "nn" else None, POINTS[point], a["f_Hz"].to_numpy())
    linear = np.abs(fast["gain_dB"].to_numpy() - lg.gain_dB) <= 0.5  # the injection's amplitude in its linear range
    assert (~linear).sum() <= 1, f"{who} at {point}: the injection is not linear at {a['f_Hz'][~linear].tolist()}"
    d_db = np.abs(a["gain_dB"].to_numpy() - lg.gain_dB)[linear]
    d_deg = np.abs((a["phase_deg"].to_numpy() - lg.phase_deg + 180) % 360 - 180)[linear]
    assert d_db.max() <= POP_SPICE_DB, f"{who} at {point}: |ngspice - POP| dB {np.round(d_db, 2)}"
    assert d_deg.max() <= POP_SPICE_DEG, f"{who} at {point}: |ngspice - POP| deg {np.round(d_deg, 1)}"
