"""Model recovery for the OCV drift: the comparison finds the generating hypothesis."""

import numpy as np
import pandas as pd
import pytest

from mgbayes import compare, demo, hypotheses, inference, sensitivity, simulate
from mgbayes.hypotheses import MODELS_DIR
from mgbayes.observations import observe

OCV = MODELS_DIR / "ocv_drift"
GRID = simulate.frequency_grid(1e5, 0.02, 4)
TIMES = np.linspace(0.5, 20, 6)


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


def ocv_and_polysulfide(seed):
    """Small data from the paper's picture ('charge_transfer' with its film arc) with the demo's realistic
    errors (floor + proportional, drift within each sweep), unlike the likelihood; and the two polysulfide cells."""
    ct = hypotheses.load(OCV / "charge_transfer.toml")
    ocv = simulate.spectra(ct, demo.ocv_parameters(), times_h=TIMES, frequency=GRID, area_cm2=demo.AREA_CM2,
                           seed=seed, **demo.error_model())
    evidence = []
    for k, (name, params) in enumerate(demo.POLYSULFIDE_PARAMETERS.items()):
        h = hypotheses.load(MODELS_DIR / "ocv_drift_info" / f"{name}.toml")
        spectrum = simulate.spectra(h, params, times_h=[0.0], frequency=GRID, area_cm2=demo.POLYSULFIDE_AREA[name],
                                    noise=demo.OCV_NOISE, floor_ohm=demo.FLOOR_OHM, seed=seed + 1 + k)
        evidence.append(inference.Evidence(name, h, observe(spectrum), ("R_e",) if name == "polysulfide_Mg" else ()))
    return ocv, tuple(evidence)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 12])
def test_spectra_alone_cannot_tell_which_arc_drifts_and_polysulfide_data_reject_the_film(seed):
    data, evidence = ocv_and_polysulfide(seed)
    names = ("charge_transfer", "film")
    alone = {h.name: inference.fit(h, data, draws=200, tune=300, chains=2, random_seed=seed)
             for h in hypotheses.load_folder(OCV) if h.name in names}
    c = compare.compare(alone, unit="spectrum")
    # the two hypotheses hold the same two arcs: the spectra alone support both (roles swapped) ...
    assert c.table.verdict.tolist().count("worse than best") == 0, str(c)
    # ... but the film fit needs its double layer and film roughness far in the tails of their priors
    flagged = sensitivity.conflicts(alone["film"]).query("conflict").parameter.tolist()
    assert {"C_dl", "roughness"} & set(flagged), flagged
    assert not sensitivity.conflicts(alone["charge_transfer"]).conflict.any()
    joint = {}
    for h in hypotheses.load_folder(OCV):
        if h.name in names:
            h.evidence = evidence
            joint[h.name] = inference.fit(h, data, draws=200, tune=300, chains=2, random_seed=seed)
    c = compare.compare(joint, unit="spectrum")
    assert row(c, "charge_transfer").verdict == "best" and row(c, "film").verdict == "worse than best", str(c)
    r_e = joint["charge_transfer"]["posterior"]["R_e"].values
    assert np.quantile(r_e, 0.03) < 2e3 < np.quantile(r_e, 0.97)  # the polysulfide cells' R_e


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
