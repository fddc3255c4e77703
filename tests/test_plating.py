"""Plating current–overpotential hypotheses (models/plating_iv) and the paper's values.

Fast tests check the hypothesis files, their laws through the hypotheses' own
forward model (the NumPy path the sampler's log-likelihood uses), the paper
dataset, the one-cell rule for ``[hierarchy]`` and the "current" LOO unit.
Slow tests sample: every hypothesis is recovered from data it simulated
(heavy-tailed noise, not the likelihood's Gaussian), and the paper's values
are reproduced within their stated spread by the two-channel hypothesis.
"""

import warnings
from pathlib import Path

import numpy as np
import pytest

from mgbayes import compare, hypotheses, inference, io, kinetics, simulate
from mgbayes.observations import observe

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "models" / "plating_iv"
PAPER = ROOT / "data" / "paper" / "plating_iv.csv"
NAMES = {"tunnelling", "poole_frenkel", "charge_transfer_onset", "koutecky_levich", "two_channel"}
PAPER_J = np.array([0.3, 1.0, 3.0, 10.0])
B_MIN = 1000 * kinetics.tafel_slope(1.0)  # 29.6 mV/decade for n = 2


@pytest.fixture(scope="module")
def hyps():
    return {h.name: h for h in hypotheses.load_folder(FOLDER)}


def pooled(h):
    return hypotheses.for_cells(h, 1)[0]


def typical(h):
    """Central prior value of every free parameter of the one-cell hypothesis."""
    return {n: p.typical() for n, p in pooled(h).prior_table().items() if not n.startswith("noise_")}


def predict(h, params, j):
    """Noise-free overpotential [V] from the hypothesis's own forward model; params broadcast."""
    j = np.asarray(j, dtype=float)
    values = {k: np.asarray(v, dtype=float) for k, v in params.items()}
    resolved = h.resolve(values, {"j": j}, cell_index=np.zeros(j.shape, dtype=int))
    return np.asarray(h.overpotential(resolved), dtype=float) + 0 * j


# --- the files -----------------------------------------------------------------


def test_every_plating_hypothesis_loads_with_an_ohmic_term_and_physical_priors(hyps):
    assert set(hyps) == NAMES
    rng = np.random.default_rng(0)
    for h in hyps.values():
        assert h.family == "plating_iv" and h.kind == "iv" and h.observed_name == "eta"
        assert h.physics and h.title and h.derived and h.noise_model == "absolute"
        assert "R_u" in h.free_parameters() and "1e-3 * R_u * j" in h.response, h.name
        assert h.hierarchy, f"{h.name}: cell-to-cell scatter for data with several cells"
        table = h.prior_table()
        for name in h.free_parameters():  # every sampled parameter has a prior stated in the file
            base = name.rsplit("_", 1)[0] if name.endswith(("_mu", "_sd", "_z")) else name
            assert name in h.priors or base in h.priors or base in h.hierarchy, (h.name, name)
        assert table["noise_sigma"].dist == "lognormal"
        for name in ("alpha", "alpha_side"):  # transfer coefficients in (0, 1): b >= 29.6 mV/decade
            if name in table and not table[name].is_fixed:
                alpha = table[name].sample(rng, 10000)
                assert alpha.min() > 0 and alpha.max() < 1
                assert 1000 * kinetics.tafel_slope(alpha).min() >= B_MIN
        if "thickness_nm" in h.priors:  # the compact layer of the OCV film hypothesis
            film = hypotheses.load(ROOT / "models" / "ocv_drift" / "film.toml")
            assert h.priors["thickness_nm"] == film.priors["thickness_nm"]


@pytest.mark.parametrize("name", sorted(NAMES))
def test_simulates_sensible_values(hyps, name):
    h = pooled(hyps[name])
    j = np.array([0.01, 0.3, 1.0, 3.0, 10.0, 30.0])
    params = typical(hyps[name])
    if name == "tunnelling":
        params["barrier_eV"] = 0.12  # the prior's median (1 eV) needs kV through 7-10 nm
    if name == "poole_frenkel":
        params["G_film"] = 1e-3
    curve = simulate.iv_curve(h, params, current_density_mA_cm2=j, noise_V=0.0, seed=0)
    eta = curve.overpotential_V
    assert np.all(np.isfinite(eta)) and np.all(eta > 0) and np.all(eta < 3.0), eta
    assert np.all(np.diff(eta) > 0), "overpotential must rise with current"
    values = {k: np.asarray(v, float) for k, v in params.items()}
    derived = h.derive(h.resolve(values, {"j": j}, cell_index=np.zeros(j.size, int)))
    assert set(derived) == set(h.derived)
    assert all(np.all(np.isfinite(v)) for v in derived.values()), derived


def test_film_conduction_cannot_be_flat(hyps):
    """Tunnelling: eta(3)/eta(0.3) >= 10^(1/3) for every film; Poole–Frenkel: steeper than a decade per 60 mV."""
    barrier = np.logspace(-1.3, 0.5, 25)[:, None, None]
    thickness = np.linspace(7.0, 10.0, 7)[None, :, None]
    eta = kinetics.simmons_overpotential(np.array([0.3, 3.0]), barrier_eV=barrier, thickness_nm=thickness)
    ratio = eta[..., 1] / eta[..., 0]
    assert ratio.min() >= 10 ** (1 / 3) * (1 - 1e-9)
    assert ratio.min() > 580 / 520  # the paper's flat 550 mV, even with +-30 mV
    derived = hyps["tunnelling"].derive({"barrier_eV": barrier, "thickness_nm_mu": thickness})
    assert derived["eta_ratio_3_to_0p3"].min() >= 10 ** (1 / 3) * (1 - 1e-9)
    G = np.logspace(-6, 2, 30)[:, None]
    rise = np.diff(kinetics.poole_frenkel_overpotential(np.array([0.3, 3.0]), G_film=G, thickness_nm=8.0,
                                                       permittivity=8.0), axis=-1)
    at_550 = np.argmin(np.abs(kinetics.poole_frenkel_overpotential(1.0, G_film=G[:, 0], thickness_nm=8.0,
                                                                     permittivity=8.0) - 0.55))
    assert rise[at_550, 0] > 0.1  # >100 mV per decade where it reaches 550 mV


def test_two_channel_can_be_flat_and_jump(hyps):
    h = pooled(hyps["two_channel"])
    params = dict(eta_1=0.538, j_ref=1.0, alpha=0.8, j_L_share=0.6, delta_side=0.21, alpha_side=0.5, R_u=2.0)
    eta = predict(h, params, PAPER_J)
    np.testing.assert_allclose(eta * 1000, [550, 550, 550, 800], atol=30)
    onset = predict(pooled(hyps["charge_transfer_onset"]), dict(eta_1=0.538, j_ref=1.0, alpha=0.8, R_u=2.0), PAPER_J)
    assert eta[-1] - onset[-1] > 0.15  # the second channel, not the onset law, makes the jump


def test_koutecky_levich_limit_sits_above_the_largest_current(hyps):
    h = pooled(hyps["koutecky_levich"])
    resolved = h.resolve({"eta_1": np.asarray(0.5), "alpha": np.asarray(0.5), "dj_L": np.asarray(0.5),
                          "R_u": np.asarray(1.0)}, {"j": PAPER_J}, cell_index=np.zeros(4, int))
    assert float(resolved["j_L"]) == pytest.approx(10.5)
    assert np.all(np.isfinite(h.overpotential(resolved)))


def test_two_channel_limit_sits_below_the_largest_current(hyps):
    """The second process carries the excess of the largest current (koutecky_levich's limit lies above it)."""
    h = pooled(hyps["two_channel"])
    values = {"eta_1": 0.5, "j_ref": 1.0, "alpha": 0.8, "j_L_share": np.array([1e-6, 0.5, 1 - 1e-9]),
              "delta_side": 0.2, "alpha_side": 0.5, "R_u": 1.0}
    resolved = h.resolve({k: np.asarray(v) for k, v in values.items()}, {"j": PAPER_J}, cell_index=np.zeros(4, int))
    np.testing.assert_allclose(resolved["j_L"], 10.0 * values["j_L_share"])
    assert np.all(resolved["j_L"] < PAPER_J.max())
    assert h.priors["j_L_share"].args == {"lower": 0.0, "upper": 1.0}


# --- data as measured; one cell; LOO by current ------------------------------------------


def test_paper_dataset_is_one_row_per_current_with_a_known_sd():
    curve = io.read_iv(PAPER)
    assert curve.n_points == 8 and set(curve.cells) == {"paper_summary"}
    expected = {"plating": ([550, 550, 550, 800], [30, 30, 30, 30]),  # sd assumed (not reported)
                "stripping": ([94, 84, 150, 310], [6, 30, 30, 10])}
    for process, (means, sds) in expected.items():
        part = curve.select(process=process)
        np.testing.assert_array_equal(part.current_density_mA_cm2, PAPER_J)
        np.testing.assert_allclose(part.overpotential_V * 1000, means)
        np.testing.assert_allclose(part.sd_V * 1000, sds)
    readme = (PAPER.parent / "README.md").read_text(encoding="utf-8")
    for needed in ("10.1039/D6FD00029K", "NOT raw data", "sd_mV", "sd = 30 mV", "known measurement standard deviation"):
        assert needed in readme


def test_known_sd_is_added_in_quadrature(tmp_path):
    curve = io.read_iv(PAPER).select(process="plating")
    obs = observe(curve)
    scale = obs.noise_scale("absolute", np.zeros(4), 0.04)
    np.testing.assert_allclose(scale, 0.05)  # sqrt(0.03^2 + 0.04^2)
    io.write_iv(curve, tmp_path / "again.csv")
    np.testing.assert_array_equal(io.read_iv(tmp_path / "again.csv").sd_V, curve.sd_V)


def test_one_cell_drops_the_hierarchy_with_a_notice(hyps):
    h = hyps["two_channel"]
    one, notice = hypotheses.for_cells(h, 1)
    assert not one.hierarchy and "eta_1" in one.free_parameters() and "eta_1_mu" not in one.free_parameters()
    assert "one cell" in notice and "eta_1" in notice
    values = dict(eta_1=0.54, j_ref=1.0, alpha=0.9, j_L_share=0.8, delta_side=0.25, alpha_side=0.5, R_u=2.0)
    derived = one.derive(one.resolve({k: np.asarray(v) for k, v in values.items()},
                                     {"j": PAPER_J}, cell_index=np.zeros(4, int)))
    assert np.isfinite(derived["side_fraction_at_10mA"])
    many, none = hypotheses.for_cells(h, 3)
    assert many is h and none is None


def test_current_unit_groups_points_by_current_density():
    from mgbayes.data import IVCurve

    curve = IVCurve(current_density_mA_cm2=[0.3, 1.0, 0.3, 1.0, 3.0], overpotential_V=[0.5] * 5,
                    cell=["a", "a", "b", "b", "b"])
    obs = observe(curve)
    np.testing.assert_array_equal(compare.unit_index(obs, "current"), [0, 1, 0, 1, 2])
    import xarray as xr

    ll = xr.DataArray(np.arange(2 * 3 * 5, dtype=float).reshape(2, 3, 5), dims=("chain", "draw", "point"))
    tree = xr.DataTree.from_dict({"log_likelihood": xr.Dataset({"eta": ll}),
                                  "constant_data": xr.Dataset({"j": ("point", obs.inputs["j"])})})
    tree.attrs["hypothesis"] = "any"
    grouped = compare.unit_loglik(tree, "current")
    assert grouped.sizes["current"] == 3
    np.testing.assert_allclose(grouped.sel(current=0.3).values, ll.isel(point=[0, 2]).sum("point").values)


# --- sampling ----------------------------------------------------------------------------

SAMPLING = dict(draws=300, tune=400, chains=2)
#: two_channel has as many parameters as the recovery data have currents, and its noise scale mixes slowly
#: (E-BFMI ~0.5): at 2 x 300 draws R-hat came out 1.03-1.08 on these seeds whether j_L, its share of the
#: largest current, or that share's logit was sampled; at 2 x 600, 1.007 and 1.022
LONGER = {"two_channel": dict(draws=600, tune=600, chains=2)}
RECOVERY_J = np.array([0.1, 0.3, 1.0, 3.0, 6.0, 10.0, 20.0])
#: generating values and the parameters checked
TRUTH = {
    "tunnelling": (dict(barrier_eV=0.15, thickness_nm=8.0, R_u=5.0), ["barrier_eV"]),
    "poole_frenkel": (dict(G_film=2e-3, thickness_nm=8.0, permittivity=8.0, R_u=5.0), ["G_film"]),
    "charge_transfer_onset": (dict(eta_1=0.5, j_ref=0.1, alpha=0.6, R_u=5.0), ["eta_1", "alpha"]),
    "koutecky_levich": (dict(eta_1=0.5, alpha=0.6, dj_L=5.0, R_u=5.0), ["eta_1", "alpha"]),
    "two_channel": (dict(eta_1=0.5, j_ref=0.3, alpha=0.8, j_L_share=0.25, delta_side=0.3, alpha_side=0.5, R_u=5.0),
                    ["eta_1", "j_L_share"]),
}


def heavy_tailed_curve(h, params, seed):
    """Simulated I–V points with Student-t noise (3 dof, scale 8 mV): not the likelihood's Gaussian."""
    clean = simulate.iv_curve(h, params, current_density_mA_cm2=RECOVERY_J, noise_V=0.0, seed=seed)
    noise = 0.008 * np.random.default_rng(seed).standard_t(3, RECOVERY_J.size)
    return clean.with_(overpotential_V=clean.overpotential_V + noise, cell="sim")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NAMES))
def test_each_hypothesis_is_recovered_from_data_it_simulated(hyps, name):
    h = pooled(hyps[name])
    params, checked = TRUTH[name]
    settings = LONGER.get(name, SAMPLING)
    for seed in (1, 2):
        data = heavy_tailed_curve(h, params, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = inference.fit(h, data, random_seed=seed, **settings)
        assert fit.attrs["divergences"] <= 0.01 * settings["draws"] * settings["chains"], fit.attrs["diagnostics"]
        assert fit.attrs["rhat_max"] < 1.05, fit.attrs["diagnostics"]
        for p in checked:
            lo, hi = np.percentile(fit["posterior"][p].values, [1, 99])
            assert lo <= params[p] <= hi, (name, seed, p, lo, hi)


@pytest.mark.slow
def test_two_channel_reproduces_the_paper_values_and_loo_leaves_out_currents(hyps):
    data = io.read_iv(PAPER).select(process="plating")
    results = {}
    for name in ("two_channel", "tunnelling"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results[name] = inference.fit(hyps[name], data, random_seed=2026, **SAMPLING)
    fit = results["two_channel"]
    assert fit.attrs["divergences"] <= 0.01 * SAMPLING["draws"] * SAMPLING["chains"], fit.attrs["diagnostics"]
    median = fit["posterior_predictive"]["eta"].median(("chain", "draw")).values
    assert np.all(np.abs(median - data.overpotential_V) <= data.sd_V), median
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", compare.ParetoKWarning)
        comparison = compare.compare(results, unit="current")
    assert comparison.method == "LOO unit: current, n = 4 currents"
    assert comparison.table.hypothesis.iloc[0] == "two_channel"


def test_ohmic_spectrum_gives_the_R_u_prior(tmp_path):
    from mgbayes import demo, study

    h = hypotheses.load(ROOT / "models" / "ocv_drift" / "charge_transfer.toml")
    series = simulate.spectra(h, demo.ocv_parameters(), times_h=[1.0], area_cm2=demo.AREA_CM2, noise=0.0)
    io.write_long_csv(series, tmp_path / "cell.csv")
    prior = study.ohmic_prior(tmp_path / "cell.csv", area_cm2=demo.AREA_CM2)
    assert prior["dist"] == "lognormal" and prior["median"] == pytest.approx(40.0, rel=0.01)  # R_el, Ohm cm2
    with pytest.raises(Exception, match="needs area_cm2"):
        study.ohmic_prior(tmp_path / "cell.csv")
