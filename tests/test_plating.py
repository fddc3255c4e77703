"""Plating current–overpotential hypotheses (models/plating_iv) and the paper's values.

Fast tests check the hypothesis files, their laws through the hypotheses' own
forward model (the NumPy path the sampler's log-likelihood uses), and the
paper dataset. Slow tests sample: recovery of the generating hypothesis on
simulated data, and the ranking on the paper's plating values.
"""

import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from mgbayes import compare, hypotheses, inference, io, simulate

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "models" / "plating_iv"
PAPER = ROOT / "data" / "paper" / "plating_iv.csv"
NAMES = {"tunnelling", "charge_transfer_onset", "charge_transfer_onset_mt", "mixed"}
PAPER_J = np.array([0.3, 1.0, 3.0, 10.0])


@pytest.fixture(scope="module")
def hyps():
    return {h.name: h for h in hypotheses.load_folder(FOLDER)}


def typical(h, n_cells=1):
    """Central prior value of every free parameter (cell offsets at zero)."""
    table = h.prior_table()
    return {n: (np.zeros(n_cells) if n.endswith("_z") else p.typical())
            for n, p in table.items() if not n.startswith("noise_")}


def predict(h, params, j, cell_index=None):
    """Noise-free overpotential [V] from the hypothesis's own forward model; params broadcast."""
    j = np.asarray(j, dtype=float)
    index = np.zeros(j.shape, dtype=int) if cell_index is None else cell_index
    values = {k: np.asarray(v, dtype=float) for k, v in params.items()}
    resolved = h.resolve(values, {"j": j}, cell_index=index)
    return np.asarray(h.overpotential(resolved), dtype=float) + 0 * j


# --- the files -----------------------------------------------------------------


def test_every_plating_hypothesis_loads(hyps):
    assert set(hyps) == NAMES
    for h in hyps.values():
        assert h.experiment == "plating_iv" and h.kind == "iv" and h.observed_name == "eta"
        assert h.physics and h.title and h.derived
        assert h.hierarchy, f"{h.name}: cell-to-cell scatter should be hierarchical"
        assert h.noise_model == "absolute"
        # every sampled parameter has a prior stated in the file (no data-based default)
        table = h.prior_table()
        for name in h.free_parameters():
            base = name.rsplit("_", 1)[0] if name.endswith(("_mu", "_sd", "_z")) else name
            assert name in h.priors or base in h.priors or base in h.hierarchy, (h.name, name)
        # the noise prior has a floor: no mass piles up at sigma -> 0
        assert table["noise_sigma"].dist == "lognormal"


def test_hierarchies(hyps):
    assert hyps["tunnelling"].hierarchy["G0"]["scale"] == "log"
    for name in ("charge_transfer_onset", "charge_transfer_onset_mt"):
        assert hyps[name].hierarchy["eta_on"]["scale"] == "additive"
    assert set(hyps["mixed"].hierarchy) == {"G0", "eta_on"}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_simulates_sensible_values(hyps, name):
    h = hyps[name]
    j = np.array([0.01, 0.3, 1.0, 3.0, 10.0, 30.0])
    curve = simulate.iv_curve(h, typical(h), current_density_mA_cm2=j, noise_V=0.0, seed=0)
    eta = curve.overpotential_V
    assert np.all(np.isfinite(eta))
    assert np.all(eta > 0) and np.all(eta < 3.0), eta
    assert np.all(np.diff(eta) > 0), "overpotential must rise with current"
    # derived quantities evaluate, finite, on the same values
    values = {k: np.asarray(v, float) for k, v in typical(h).items()}
    derived = h.derive(h.resolve(values, {"j": j}, cell_index=np.zeros(j.size, int)))
    assert set(derived) == set(h.derived)
    assert all(np.all(np.isfinite(v)) for v in derived.values()), derived


def test_tunnelling_cannot_be_flat(hyps):
    """j = G0 (eta + gamma eta^3): eta(3)/eta(0.3) >= 10^(1/3) for every G0, gamma >= 0.

    j/eta = G0 (1 + gamma eta^2) grows with eta, so a tenfold current needs at
    least 10^(1/3) times the overpotential. The paper's plating is flat, 550 mV
    at 0.3 and at 3 mA cm-2: even with the assumed ±30 mV the ratio is at most
    580/520 = 1.12.
    """
    h = hyps["tunnelling"]
    G0 = np.logspace(-4, 4, 81)[:, None, None]
    gamma = np.concatenate([[0.0], np.logspace(-4, 4, 81)])[None, :, None]
    params = {"G0_mu": G0, "G0_sd": 0.0, "G0_z": np.zeros(1), "gamma": gamma}
    eta = predict(h, params, np.array([0.3, 3.0]))
    ratio = eta[..., 1] / eta[..., 0]
    assert ratio.shape == (81, 82)
    assert ratio.min() >= 10 ** (1 / 3) * (1 - 1e-9)
    assert ratio.max() <= 10 * (1 + 1e-9)  # ohmic at most
    assert ratio.min() > 580 / 520
    # and so is the derived quantity reported after a fit
    derived = h.derive(h.resolve({k: np.asarray(v) for k, v in params.items()}, {"j": PAPER_J},
                                 cell_index=np.zeros(4, int)))
    assert derived["eta_ratio_3_to_0p3"].min() >= 10 ** (1 / 3) * (1 - 1e-9)
    # the law is the root of the cubic
    G0v, gv = 0.7, 5.0
    e = predict(h, {"G0_mu": G0v, "G0_sd": 0.0, "G0_z": np.zeros(1), "gamma": gv}, PAPER_J)
    np.testing.assert_allclose(G0v * (e + gv * e**3), PAPER_J, rtol=1e-10)


def test_onset_law_can_be_flat(hyps):
    """Onset charge transfer with a small Tafel slope is flat over a decade of current."""
    h = hyps["charge_transfer_onset"]
    params = {"eta_on_mu": 0.55, "eta_on_sd": 0.0, "eta_on_z": np.zeros(1), "b": 0.02, "j_ref": 0.01}
    eta = predict(h, params, np.array([0.3, 1.0, 3.0]))
    assert np.ptp(eta) < 0.03
    np.testing.assert_allclose(eta, 0.55 + 0.02 * np.log10(np.array([0.3, 1.0, 3.0]) / 0.01), atol=2e-4)


def test_mixed_contains_both_mechanisms(hyps):
    j = np.logspace(-2, 1.5, 12)
    onset = {"eta_on_mu": 0.4, "eta_on_sd": 0.0, "eta_on_z": np.zeros(1), "b": 0.05, "j_ref": 0.05}
    tunnel = {"G0_mu": 2.0, "G0_sd": 0.0, "G0_z": np.zeros(1), "gamma": 10.0}
    film_free = predict(hyps["mixed"], {**onset, **tunnel, "G0_mu": 1e9}, j)
    np.testing.assert_allclose(film_free, predict(hyps["charge_transfer_onset"], onset, j), atol=1e-7)
    both = predict(hyps["mixed"], {**onset, **tunnel}, j)
    np.testing.assert_allclose(both, predict(hyps["charge_transfer_onset"], onset, j)
                               + predict(hyps["tunnelling"], tunnel, j), rtol=1e-12)


def test_mass_transport_term(hyps):
    h = hyps["charge_transfer_onset_mt"]
    onset = {"eta_on_mu": 0.4, "eta_on_sd": 0.0, "eta_on_z": np.zeros(1), "b": 0.05, "j_ref": 0.05}
    j = np.array([1.0, 10.0, 19.0, 25.0])
    eta = predict(h, {**onset, "j_lim": 20.0}, j)
    base = predict(hyps["charge_transfer_onset"], onset, j)
    rt_2f = 8.314 * 298.15 / (2 * 96485.332)
    np.testing.assert_allclose(eta[:3] - base[:3], -rt_2f * np.log(1 - j[:3] / 20.0), rtol=1e-9)
    assert np.isinf(eta[3])  # beyond the limiting current: impossible, zero likelihood
    # n = 2: even at 95 % of j_lim the concentration term is only ~40 mV
    assert eta[2] - base[2] < 0.04


def test_hierarchical_cells_shift_onset(hyps):
    h = hyps["charge_transfer_onset"]
    params = {"eta_on_mu": 0.4, "eta_on_sd": 0.02, "eta_on_z": np.array([-1.0, 2.0]), "b": 0.05, "j_ref": 0.05}
    curve = simulate.iv_curve(h, params, current_density_mA_cm2=[1.0, 1.0], cells=["a", "b"], noise_V=0.0)
    assert curve.overpotential_V[1] - curve.overpotential_V[0] == pytest.approx(0.06)


# --- the paper's values ----------------------------------------------------------------


def test_paper_dataset_has_the_reported_numbers():
    curve = io.read_iv(PAPER)
    assert curve.n_points == 24
    assert set(curve.cells) == {"paper_summary"}
    expected = {
        "plating": ([550, 550, 550, 800], [30, 30, 30, 30]),  # sd assumed (not reported)
        "stripping": ([94, 84, 150, 310], [6, 30, 30, 10]),
    }
    for process, (means, sds) in expected.items():
        part = curve.select(process=process)
        assert part.n_points == 12
        for j, mean, sd in zip(PAPER_J, means, sds):
            eta_mV = part.overpotential_V[part.current_density_mA_cm2 == j] * 1000
            assert eta_mV.size == 3  # "at least three repetitions"
            assert eta_mV.mean() == pytest.approx(mean)
            assert eta_mV.std(ddof=1) == pytest.approx(sd)
    readme = (PAPER.parent / "README.md").read_text(encoding="utf-8")
    for needed in ("10.1039/D6FD00029K", "NOT raw data", "mean − sd", "sd = 30 mV"):
        assert needed in readme


# --- sampling ----------------------------------------------------------------------------

SAMPLING = dict(draws=300, tune=500, chains=2)


def _fit_all(hyps, data, names, seed):
    results, seconds = {}, {}
    for name in names:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence and Pareto-k notes are reported, not failures here
            results[name] = inference.fit(hyps[name], data, random_seed=seed, **SAMPLING)
        seconds[name] = time.perf_counter() - start
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", compare.ParetoKWarning)
        comparison = compare.compare(results)
    return results, comparison, seconds


def _row(comparison, name):
    return comparison.table.set_index("hypothesis").loc[name]


WIDE_J = np.logspace(-2, np.log10(30.0), 10)  # 0.01-30 mA cm-2
TRUTH = {
    # film conductance scatters by ~20 % between cells
    "tunnelling": dict(G0_mu=3.0, G0_sd=0.2, G0_z=np.array([0.5, -1.0, 0.4]), gamma=20.0),
    # onset scatters by ~20 mV between cells
    "charge_transfer_onset": dict(eta_on_mu=0.45, eta_on_sd=0.02, eta_on_z=np.array([0.5, -1.0, 0.4]),
                                  b=0.05, j_ref=0.05),
}
# hypotheses that contain the generating one as a special case may tie with it
NESTING = {"tunnelling": {"mixed"}, "charge_transfer_onset": {"charge_transfer_onset_mt", "mixed"}}
RIVAL = {"tunnelling": "charge_transfer_onset", "charge_transfer_onset": "tunnelling"}


@pytest.mark.slow
@pytest.mark.parametrize("truth", sorted(TRUTH))
def test_simulated_iv_recovers_the_generating_hypothesis(hyps, truth):
    cells = np.repeat(["c1", "c2", "c3"], WIDE_J.size)
    data = simulate.iv_curve(hyps[truth], TRUTH[truth], current_density_mA_cm2=np.tile(WIDE_J, 3), cells=cells,
                             noise_V=0.01, seed=1)
    _, comparison, seconds = _fit_all(hyps, data, sorted(NAMES), seed=1)
    print(f"\n{comparison}\nfit seconds: { {k: round(v, 1) for k, v in seconds.items()} }")
    row = _row(comparison, truth)
    best = comparison.table.hypothesis.iloc[0]
    # the rule: the truth is best, or the data cannot tell it from the best, which then
    # must be a hypothesis that contains it
    assert row.verdict in ("best", "indistinguishable from best")
    assert best == truth or best in NESTING[truth]
    # the other single mechanism is clearly worse
    assert _row(comparison, RIVAL[truth]).verdict == "worse than best"


@pytest.mark.slow
def test_paper_plating_values_rule_out_tunnelling_alone(hyps):
    data = io.read_iv(PAPER).select(process="plating")
    results, comparison, seconds = _fit_all(hyps, data, sorted(NAMES), seed=2)
    print(f"\n{comparison}\nfit seconds: { {k: round(v, 1) for k, v in seconds.items()} }")
    for name, idata in results.items():
        mean = idata["posterior_predictive"]["eta_mean"].mean(("chain", "draw")).values[::3] * 1000
        print(f"{name}: posterior mean eta at 0.3, 1, 3, 10 mA cm-2 = {np.round(mean)} mV")
    # eta(3)/eta(0.3) >= 2.15 for tunnelling, the data are flat: it cannot be the best
    assert comparison.table.hypothesis.iloc[0] != "tunnelling"
    assert _row(comparison, "tunnelling").verdict == "worse than best"
    tunnelling = results["tunnelling"]["posterior"]["eta_ratio_3_to_0p3"]
    assert float(tunnelling.min()) >= 10 ** (1 / 3) * (1 - 1e-9)
