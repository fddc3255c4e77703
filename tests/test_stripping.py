"""Stripping activation hypotheses (models/stripping_activation) and the synthetic demo transients.

Fast tests check the files and the change-point law through the hypotheses'
own forward model; the demo CSV is regenerated from the script in its README.
Slow tests sample: each hypothesis must be recovered from data it generated.
"""

import re
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from mgbayes import compare, hypotheses, inference, io, simulate

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "models" / "stripping_activation"
DEMO = ROOT / "data" / "demo" / "stripping_transients.csv"
README = ROOT / "data" / "demo" / "README-stripping.md"
CURRENTS = [0.3, 1.0, 3.0, 10.0]
COMMON = dict(width_h=0.03, eta_pre_mu=0.5, eta_pre_sd=0.05, eta_pre_z=np.array([-0.6, -0.2, 0.4, 1.0]),
              eta_post_0=0.07, R_post=0.024)
PARAMS = {"time_controlled": dict(COMMON, t_act_h=1.0),     # the paper's observation
          "charge_controlled": dict(COMMON, Q_act=0.6)}     # activation at 2, 0.6, 0.2, 0.06 h


@pytest.fixture(scope="module")
def hyps():
    return {h.name: h for h in hypotheses.load_folder(FOLDER)}


def midpoint_crossing_h(tr, pre=None, post=None):
    """First time [h] the transient falls below halfway between the levels before and after
    activation (default: its first and last few points)."""
    eta = tr.overpotential_V
    pre = eta[:3].mean() if pre is None else pre
    post = eta[-3:].mean() if post is None else post
    return tr.time_s[np.argmax(eta < 0.5 * (pre + post))] / 3600.0


def levels(params, k, j):
    """Overpotential [V] before and after activation of transient k at current j."""
    pre = params["eta_pre_mu"] + params["eta_pre_sd"] * params["eta_pre_z"][k]
    return pre, params["eta_post_0"] + params["R_post"] * j


def test_both_hypotheses_load(hyps):
    assert set(hyps) == {"time_controlled", "charge_controlled"}
    for h in hyps.values():
        assert h.experiment == "stripping_activation" and h.kind == "transient"
        assert h.physics and h.derived
        assert "sigmoid" in h.response and "t_act_h" in h.response
        assert set(h.hierarchy) == {"eta_pre"}
        assert h.prior_table()["noise_sigma"].dist == "lognormal"
    assert "t_act_h" in hyps["time_controlled"].free_parameters()
    assert "Q_act" in hyps["charge_controlled"].free_parameters()
    assert hyps["charge_controlled"].transform["t_act_h"] == "Q_act / j"
    # the two differ only in what sets the activation time
    a, b = (set(h.free_parameters()) for h in hyps.values())
    assert a ^ b == {"t_act_h", "Q_act"}


@pytest.mark.parametrize("name", ["time_controlled", "charge_controlled"])
def test_change_point_law(hyps, name):
    params = PARAMS[name]
    transients = simulate.transients(hyps[name], params, current_densities_mA_cm2=CURRENTS, duration_h=3.0,
                                     points=721, noise_V=0.0, seed=0)
    for k, (j, tr) in enumerate(zip(CURRENTS, transients)):
        t_act = params["t_act_h"] if name == "time_controlled" else params["Q_act"] / j
        pre, post = levels(params, k, j)
        if t_act > 10 * params["width_h"]:  # else the drop has begun at t = 0
            assert tr.overpotential_V[0] == pytest.approx(pre, abs=0.002)
        assert tr.overpotential_V[-1] == pytest.approx(post, abs=0.002)
        assert pre / post > 1.5  # the drop the paper reports (500 -> 40-310 mV)
        assert midpoint_crossing_h(tr, pre, post) == pytest.approx(t_act, abs=3.0 / 720 + 1e-9)
        assert np.all(np.diff(tr.overpotential_V) <= 0)  # a smooth, monotonic drop


def test_activation_time_scaling(hyps):
    """Time control: same time at every current; charge control: time ∝ 1/j."""
    crossings = {}
    for name in PARAMS:
        trs = simulate.transients(hyps[name], PARAMS[name], current_densities_mA_cm2=CURRENTS, points=721,
                                  noise_V=0.0)
        crossings[name] = np.array([midpoint_crossing_h(tr, *levels(PARAMS[name], k, j))
                                    for k, (j, tr) in enumerate(zip(CURRENTS, trs))])
    assert np.ptp(crossings["time_controlled"]) < 0.01
    charge = crossings["charge_controlled"] * np.array(CURRENTS)  # = Q_act
    np.testing.assert_allclose(charge, 0.6, rtol=0.05)


def test_demo_transients_are_the_time_controlled_ones():
    transients = io.read_transients(DEMO)
    assert [tr.current_density_mA_cm2 for tr in transients] == CURRENTS
    for tr in transients:
        assert tr.process == "stripping" and tr.cell == "synthetic"
        assert tr.n_points == 120 and tr.time_s[-1] == pytest.approx(3 * 3600)
        # ~500 mV before, a drop near 1 h whatever the current, 77-310 mV after
        assert 0.4 < tr.overpotential_V[:10].mean() < 0.65
        assert 0.9 < midpoint_crossing_h(tr) < 1.1
    after = [tr.overpotential_V[-20:].mean() for tr in transients]
    np.testing.assert_allclose(after, [0.0772, 0.094, 0.142, 0.31], atol=0.006)


def test_demo_readme_script_reproduces_the_file(tmp_path, monkeypatch):
    text = README.read_text(encoding="utf-8")
    assert "SYNTHETIC" in text and "not measurements" in text
    script = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    out = tmp_path / "again.csv"
    assert "data/demo/stripping_transients.csv" in script
    monkeypatch.chdir(ROOT)
    exec(compile(script.replace("data/demo/stripping_transients.csv", str(out)), "README-stripping.md", "exec"), {})
    assert out.read_text() == DEMO.read_text()


# --- sampling ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("truth", ["time_controlled", "charge_controlled"])
def test_simulated_activation_recovers_the_generating_hypothesis(hyps, truth):
    data = simulate.transients(hyps[truth], PARAMS[truth], current_densities_mA_cm2=CURRENTS, duration_h=3.0,
                               points=60, noise_V=0.01, seed=7, cell="sim")
    results, seconds = {}, {}
    for name, h in hyps.items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results[name] = inference.fit(h, data, draws=300, tune=500, chains=2, random_seed=3)
        seconds[name] = round(time.perf_counter() - start, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", compare.ParetoKWarning)
        comparison = compare.compare(results)
    print(f"\n{comparison}\nfit seconds: {seconds}")
    table = comparison.table.set_index("hypothesis")
    assert comparison.table.hypothesis.iloc[0] == truth
    other = ({"time_controlled", "charge_controlled"} - {truth}).pop()
    assert table.loc[other, "verdict"] == "worse than best"
    # and the activation parameter is recovered
    name = "t_act_h" if truth == "time_controlled" else "Q_act"
    value = float(results[truth]["posterior"][name].median())
    assert value == pytest.approx(PARAMS[truth][name], rel=0.1)
