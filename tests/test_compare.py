"""Model recovery for the OCV drift: the comparison finds the generating hypothesis."""

import contextlib

import numpy as np
import pandas as pd
import pytest

from mgbayes import compare, demo, hypotheses, inference, simulate
from mgbayes.hypotheses import MODELS_DIR

OCV = MODELS_DIR / "ocv_drift"
INFO = {"R_e": {"dist": "lognormal", "median": 2.0e3, "sd_log": 0.5}}
GRID = simulate.frequency_grid(1e5, 0.02, 6)
TIMES = np.linspace(0.5, 20, 8)


def fit_all(data, priors=None, seed=1, names=None):
    return {h.name: inference.fit(h, data, draws=400, tune=500, chains=2, random_seed=seed)
            for h in hypotheses.load_folder(OCV, priors=priors) if names is None or h.name in names}


def row(comparison, name):
    return comparison.table.set_index("hypothesis").loc[name]


def test_verdict_rule_on_a_table():
    table = pd.DataFrame({"hypothesis": ["a", "b", "c"], "rank": [1, 2, 3], "elpd_diff": [0.0, 3.0, 50.0],
                          "dse": [0.0, 1.0, 5.0]})
    table["verdict"] = [compare._row_verdict(r) for r in table.itertuples()]
    assert list(table.verdict) == ["best", "indistinguishable from best", "worse than best"]
    text = compare.verdict(table)
    assert "cannot tell 'a' apart from 'b'" in text and "Clearly worse: 'c'" in text
    assert compare.distinguishable(10.0, 4.0) and not compare.distinguishable(10.0, 6.0)


@pytest.mark.slow
def test_charge_transfer_data_recovered_and_film_rejected_with_Re_information():
    ct = hypotheses.load(OCV / "charge_transfer.toml")
    data = simulate.spectra(ct, demo.ocv_parameters(), times_h=TIMES, frequency=GRID, area_cm2=demo.AREA_CM2,
                            noise=0.01, seed=11)
    results = fit_all(data, priors=INFO)
    c = compare.compare(results)
    # charge transfer is best, or tied with 'mixed' (which contains it); film is clearly worse
    assert row(c, "charge_transfer").verdict in ("best", "indistinguishable from best"), str(c)
    assert row(c, "film").verdict == "worse than best", str(c)
    assert set(c.table.columns) >= {"experiment", "hypothesis", "rank", "elpd_loo", "se", "elpd_diff", "dse",
                                    "weight", "verdict"}



@pytest.mark.slow
def test_film_data_are_not_explained_by_charge_transfer_alone():
    film = hypotheses.load(OCV / "film.toml")
    truth = {"R_el": 40.0, "R_ion_0": 2e4, "R_ion_rate": 0.45, "R_e": 1e7, "thickness_nm": 8.0, "permittivity": 8.0,
             "CPE_film_P": 0.95, "R_ct": 3e3, "CPE_dl_T": 3e-5, "CPE_dl_P": 0.9}
    data = simulate.spectra(film, truth, times_h=TIMES, frequency=GRID, area_cm2=demo.AREA_CM2, noise=0.01, seed=12)
    c = compare.compare(fit_all(data))
    # film is best, or tied with 'mixed' (which contains it)
    assert row(c, "film").verdict in ("best", "indistinguishable from best"), str(c)


def test_exact_refit_agrees_with_psis_where_k_is_low_and_replaces_flagged_units():
    h = hypotheses.from_table({
        "name": "tafel", "experiment": "iv", "physics": "Tafel line", "kind": "iv",
        "response": {"overpotential": "eta0 + b * log10(j)"},
        "priors": {"eta0": {"dist": "normal", "mu": 0.3, "sigma": 0.2},
                   "b": {"dist": "lognormal", "median": 0.1, "sd_log": 1.0}},
        "noise": {"model": "absolute", "sigma": {"dist": "halfnormal", "sigma": 0.05}},
    })
    j = np.array([0.1, 0.2, 0.5, 1, 2, 5, 10, 20])
    data = simulate.iv_curve(h, {"eta0": 0.3, "b": 0.12}, current_density_mA_cm2=j, noise_V=0.01, seed=3)
    idata = inference.fit(h, data, draws=1000, tune=700, chains=2, random_seed=5)
    psis = compare.loo(idata)
    units = [2, 5]
    exact = compare.exact_loo(h, data, unit="point", units=units, draws=1000, tune=700, chains=2, random_seed=6)
    np.testing.assert_allclose(exact, psis.elpd_i.values[units], atol=0.15)
    # a flagged unit is replaced by its exact value and no longer counted as bad
    mask = np.zeros(j.size, bool)
    mask[units] = True
    patched = compare.replace_units(psis, exact, mask)
    assert patched.elpd == pytest.approx(psis.elpd - psis.elpd_i.values[units].sum() + exact.sum())
    assert not bool((patched.pareto_k.values[mask] > compare.K_BAD).any())


def _fake_fit(name, centre, *, seed, divergences=0, outlier=False, chain_offsets=(0.0, 0.0, 0.0, 0.0)):
    """A well-mixed fake fit of a normal mean (4 chains x 500 draws) to 40 points around 0.

    ``centre`` shifts the fitted mean (a worse hypothesis); ``divergences``
    marks draws divergent; ``outlier`` adds a point whose likelihood moves so
    much with the draws that PSIS fails on it (Pareto k > 0.7);
    ``chain_offsets`` put chains in different places.
    """
    import xarray as xr

    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 0.05, (4, 500)) + np.asarray(chain_offsets)[:, None]
    y = np.linspace(-1.0, 1.0, 40)
    ll = -0.5 * ((y - centre - theta[..., None]) / 0.3) ** 2 - np.log(0.3 * np.sqrt(2 * np.pi))
    if outlier:
        ll[..., 0] = -0.5 * (20.0 * theta / 0.3) ** 2
    diverging = np.zeros((4, 500), dtype=bool)
    diverging.flat[rng.choice(2000, divergences, replace=False)] = True
    coords = {"chain": np.arange(4), "draw": np.arange(500)}
    tree = xr.DataTree.from_dict({
        "posterior": xr.Dataset({"theta": (("chain", "draw"), theta)}, coords=coords),
        "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), diverging),
                                    "lp": (("chain", "draw"), ll.sum(-1) - 0.5 * (theta / 0.05) ** 2)}, coords=coords),
        "log_likelihood": xr.Dataset({"Z": (("chain", "draw", "point"), ll)}, coords={**coords, "point": y}),
    })
    tree.attrs.update({"hypothesis": name, "experiment": "fake"})
    return tree


def test_a_clear_winner_with_sound_fits_is_preferred_with_pseudo_bma_weights():
    fits = {"right": _fake_fit("right", 0.0, seed=1), "wrong": _fake_fit("wrong", 1.0, seed=2)}
    c = compare.compare(fits)
    assert c.decision == compare.decide(fits, c) == "preferred"
    assert "'right' is preferred" in c.verdict and not c.reasons
    assert c.table.weight.iloc[0] > 0.99 and np.isclose(c.table.weight.sum(), 1.0)
    # n and the unit stand beside the comparison, added after the fixed columns
    assert list(c.table.columns[-2:]) == ["n", "unit"]
    assert list(c.table.n) == [40, 40] and list(c.table.unit) == ["point", "point"]
    assert "n = 40 points" in str(c) and "n = 40 points" in c.verdict


def test_indistinguishable_hypotheses_get_no_weights():
    c = compare.compare({"a": _fake_fit("a", 0.0, seed=1), "b": _fake_fit("b", 0.001, seed=2)})
    assert c.decision == "indistinguishable" and c.table.weight.isna().all()


@pytest.mark.parametrize("problem", ["divergences", "pareto_k", "modes"])
def test_unreliable_instead_of_preferred_when_the_winner_is_flagged(problem):
    bad = {"divergences": {"divergences": 40}, "pareto_k": {"outlier": True},
           "modes": {"chain_offsets": (0.0, 0.0, 0.4, 0.4)}}[problem]
    fits = {"right": _fake_fit("right", 0.0, seed=1, **bad), "wrong": _fake_fit("wrong", 1.0, seed=2)}
    with pytest.warns(UserWarning) if problem == "pareto_k" else contextlib.nullcontext():
        c = compare.compare(fits)
    assert c.table.hypothesis.iloc[0] == "right"  # the ELPDs alone would prefer it ...
    assert compare.decide(fits, c) == c.decision == "unreliable", c.verdict  # ... but the verdict says unreliable
    assert c.verdict.startswith("UNRELIABLE") and "is preferred" not in c.verdict and "'right' ranks first" in c.verdict
    assert c.table.weight.isna().all()
    word = {"divergences": "40 divergent transitions", "pareto_k": "Pareto k > 0.7",
            "modes": "R-hat"}[problem]
    assert word in c.verdict
    if problem != "pareto_k":
        assert c.table.set_index("hypothesis").loc["right", "verdict"].startswith("best; unreliable: ")
