"""Outside evidence: the polysulfide spectra fitted jointly (sharing R_e), and the hard-bound alternative."""

import numpy as np
import pytest

from mgbayes import demo, hypotheses, inference, io, study
from mgbayes.errors import HypothesisError
from mgbayes.hypotheses import MODELS_DIR
from mgbayes.observations import observe
from tests.studies import write_demo_ocv_study

INFO = MODELS_DIR / "ocv_drift_info"


def with_re():
    s = study.load_study(demo.STUDY)
    return next(e for e in s.experiments if e.name == "ocv_drift_with_Re")


@pytest.mark.slow  # compiles the joint model's density (tens of seconds)
def test_joint_model_shares_R_e_and_the_polysulfide_arc():
    experiment = with_re()
    ct = next(h for h in study.load_hypotheses(experiment) if h.name == "charge_transfer")
    data = study.load_data(experiment, "impedance")
    model, _ = inference.build_model(ct, data)
    likelihoods = {"Z", "Z_polysulfide_GC", "Z_polysulfide_Mg"}  # each a potential over its units (kept: weight 1)
    assert likelihoods <= {p.name for p in model.potentials}
    free = {rv.name for rv in model.free_RVs}
    # R_e is the OCV hypothesis's (from R_film_0 and ln_Rion_Re), not a second parameter; one polysulfide arc
    assert "R_e" not in free and {"R_film_0", "ln_Rion_Re", "R_ps", "C_ps", "ps_shift", "C_fps"} <= free
    assert {"polysulfide_GC_noise_sigma", "polysulfide_Mg_noise_sigma"} <= free
    kept = model["kept_units_polysulfide_Mg"].get_value()  # one weight per point of each outside spectrum
    assert kept.shape == (len(model.coords["polysulfide_Mg_time"]), len(model.coords["polysulfide_Mg_frequency"]))
    assert np.all(kept == 1.0)
    # the Mg||Mg likelihood prefers the R_e that made the data to a film a thousand times more resistive
    logp = model.compile_fn(model.logp(vars=[p for p in model.potentials if p.name in likelihoods]), point_fn=True)
    point = model.initial_point()
    truth = demo.POLYSULFIDE_PARAMETERS["polysulfide_Mg"]
    for name in ("R_ps", "C_ps", "ps_shift", "C_fps"):
        point[f"{name}_log__"] = np.log(truth[name])
    point["polysulfide_Mg_noise_sigma_log__"] = point["polysulfide_GC_noise_sigma_log__"] = np.log(0.01)
    values = {}
    for ratio in (500.0, 1 / 1001.0):  # R_film_0 = 1996 with R_ion / R_e = 500 or 1/1001: R_e = 2 kOhm or 2 MOhm cm2
        point["R_film_0_log__"] = np.log(1996.0)
        point["ln_Rion_Re"] = np.log(ratio)
        values[ratio] = float(logp(point))
    assert values[500.0] > values[1 / 1001.0] + 100


def test_evidence_must_share_only_what_the_hypothesis_defines():
    ct = hypotheses.load(MODELS_DIR / "ocv_drift" / "charge_transfer.toml")
    mg = hypotheses.load(INFO / "polysulfide_Mg.toml")
    obs = observe(io.read(demo.DEMO_DIR / "polysulfide_Mg.csv", area_cm2=demo.AREA_CM2, symmetric=True))
    inference.check_evidence(ct, [inference.Evidence("mg", mg, obs, ("R_e",))])
    with pytest.raises(HypothesisError, match=r"shares \['R_x'\], which 'charge_transfer' does not define"):
        inference.check_evidence(ct, [inference.Evidence("mg", mg, obs, ("R_x",))])
    with pytest.raises(HypothesisError, match=r"\['R_e'\] are named in both but not shared"):
        inference.check_evidence(ct, [inference.Evidence("mg", mg, obs, ())])


def test_hard_bound_alternative_reaches_every_hypothesis(tmp_path):
    path = write_demo_ocv_study(tmp_path, f'information = ["{INFO / 'electronic_resistance_bound.toml'}"]', name="bound")
    experiment = study.load_study(path).experiments[0]
    assert experiment.bounds == {"R_e": {"upper": 5e3}} and not experiment.information
    hyps = study.load_hypotheses(experiment)
    assert all(h.bounds == {"R_e": {"upper": 5e3}} for h in hyps)
    model, _ = inference.build_model(hyps[0], study.load_data(experiment, "impedance"))
    assert "bound_R_e" in model.named_vars
    # a steep wall: nothing inside, about -2 at 1 % beyond, -200 at twice the bound
    values = [float(inference.bound_logp(np.array([x]), {"upper": 5e3})) for x in (2e3, 5.05e3, 1e4)]
    assert values[0] == pytest.approx(0.0, abs=1e-9) and -3 < values[1] < -1.5 and values[2] == pytest.approx(-200.0)


def test_bad_bound_and_evidence_tables_name_the_file(tmp_path):
    (tmp_path / "b.toml").write_text("[bounds]\nR_e = { below = 5.0 }\n")
    text = f"""
[[experiment]]
name = "x"
data = "{demo.DEMO_DIR / 'ocv_drift_MgMg.csv'}"
hypotheses = "{MODELS_DIR / 'ocv_drift'}"
"""
    (tmp_path / "s.toml").write_text(text + f'information = ["{tmp_path / "b.toml"}"]\n')
    with pytest.raises(HypothesisError, match=r"b.toml \[bounds.R_e\]: expected"):
        study.load_study(tmp_path / "s.toml")
    (tmp_path / "s.toml").write_text(text + '[[experiment.evidence]]\nname = "ps"\ndata = "nowhere.csv"\n'
                                     f'hypothesis = "{INFO / "polysulfide_GC.toml"}"\n')
    with pytest.raises(HypothesisError, match="evidence 1.*nowhere.csv does not exist"):
        study.load_study(tmp_path / "s.toml")
