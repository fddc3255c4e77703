"""mgbayes calibrate: verdict rates on simulated data, gating, SBC, and the command's errors."""

import tomllib

import numpy as np
import pandas as pd
import pytest

from pymc.blocking import DictToArrayBijection

from mgbayes import calibrate, hypotheses, inference, sampler, sbc, study
from mgbayes.cli import main
from mgbayes.demo import STUDY
from mgbayes.observations import observe

from .calibration_studies import OFFSET, OHMIC, TAFEL, write_iv_study

def _iv(tmp_path, files, **kwargs):
    path = write_iv_study(tmp_path / "study", files, **kwargs)
    return path, study.load_study(path).experiments[0]


# -- fast: errors, rule, tables ----------------------------------------------------------------

def test_command_errors_are_one_line(tmp_path, capsys):
    path, _ = _iv(tmp_path, [OHMIC, TAFEL])
    assert main(["calibrate", str(path), "--experiment", "nope", "--out", str(tmp_path / "o")]) == 2
    assert "no experiment named 'nope'" in capsys.readouterr().err
    assert main(["calibrate", str(path), "--replicates", "0", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--replicates 0" in err and len(err.strip().splitlines()) == 1
    assert main(["design", str(path), "--replicates", "-1", "--out", str(tmp_path / "o")]) == 2
    assert "--replicates -1" in capsys.readouterr().err
    broken = OHMIC.replace('"R * j"', '"log(-R * j)"').replace('name = "ohmic"', 'name = "broken"')
    path, _ = _iv(tmp_path / "b", [OHMIC, broken])
    assert main(["calibrate", str(path), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "'broken'" in err and "cannot simulate" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o2" / "fits").exists()  # refused before any fit


def _comparison(rows):
    table = pd.DataFrame(rows, columns=["hypothesis", "elpd_diff", "dse", "n_bad_k"])
    return type("C", (), {"table": table})()


def test_decide_applies_the_rule_with_gating():
    ok = {"a": False, "b": False}
    assert calibrate.decide(_comparison([("a", 0, 0, 0), ("b", 10.0, 2.0, 0)]), ok) == ("a", "preferred", 10.0, 2.0)
    assert calibrate.decide(_comparison([("a", 0, 0, 0), ("b", 10.0, 6.0, 0)]), ok)[1] == "indistinguishable"
    assert calibrate.decide(_comparison([("a", 0, 0, 0), ("b", 3.0, 0.5, 0)]), ok)[1] == "indistinguishable"
    assert calibrate.decide(_comparison([("a", 0, 0, 2), ("b", 10.0, 2.0, 0)]), ok)[1] == "unreliable"
    assert calibrate.decide(_comparison([("a", 0, 0, 0), ("b", 10.0, 2.0, 3)]), ok)[1] == "preferred"
    assert calibrate.decide(_comparison([("a", 0, 0, 0), ("b", 10.0, 2.0, 0)]), {"a": False, "b": True})[1] == "unreliable"


def test_replicate_fits_shorter_than_the_studys_are_announced():
    experiment = calibrate.select(study.load_study(STUDY), "ocv_drift")[0]  # the demo: 4 chains x 1000 draws
    assert calibrate.short_fits_note(experiment, calibrate.sampler_settings(experiment)) is None
    note = calibrate.short_fits_note(experiment, calibrate.sampler_settings(
        experiment, overrides={"chains": 2, "draws": 500}))
    assert note.startswith("ocv_drift: replicate fits of 2 chains × 500 draws, shorter than the study's 4 × 1000")
    assert "unreliable" in note and "\n" not in note
    assert calibrate.short_fits_note(experiment, calibrate.sampler_settings(experiment, quick=True)) is not None


def test_confusion_counts_false_preferences_with_an_interval():
    rows = [("a", "a", "preferred"), ("a", "b", "preferred"), ("a", "a", "indistinguishable"),
            ("b", "b", "preferred"), ("b", "a", "unreliable")]
    frame = pd.DataFrame([{"experiment": "e", "generator": g, "replicate": k, "best": b, "verdict": v,
                           "elpd_diff": 0.0, "dse": 0.0} for k, (g, b, v) in enumerate(rows)])
    table = calibrate.confusion(frame).set_index("generator")
    assert table.loc["a", list(calibrate.OUTCOMES)].tolist() == [1, 1, 1, 0]
    assert table.loc["b", list(calibrate.OUTCOMES)].tolist() == [1, 0, 0, 1]
    assert table.loc["all", "false_preference"] == pytest.approx(1 / 5)
    low, high = table.loc["all", ["fp_low", "fp_high"]]
    assert 0 < low < 0.2 < high < 1


def test_sbc_uniformity_flags_u_shaped_ranks():
    rng = np.random.default_rng(0)
    uniform = rng.integers(0, sbc.RANK_DRAWS + 1, 60)
    u_shape = np.where(rng.random(60) < 0.5, rng.integers(0, 5, 60), rng.integers(95, 100, 60))
    frame = pd.DataFrame({"experiment": "e", "hypothesis": "h", "rank": np.r_[uniform, u_shape],
                          "parameter": ["ok"] * 60 + ["bad"] * 60})
    tests = sbc.uniformity(frame).set_index("parameter")
    assert not tests.loc["ok", "flagged"] and tests.loc["bad", "flagged"]


def test_set_observed_swaps_data_into_the_compiled_density(tmp_path):
    _, experiment = _iv(tmp_path, [OHMIC, TAFEL])
    h = hypotheses.load(experiment.hypothesis_paths[0])
    obs = observe(study.load_data(experiment, "iv"))
    for _ in range(2):  # the second model's density comes from the disk cache
        model, design = inference.build_model(h, obs, mutable=True)
        fn = sampler.density(model, key=model.mgbayes_key)
        x = DictToArrayBijection.map(model.initial_point()).data
        before = fn(x)[0]
        inference.set_observed(model, design, obs.values + 0.1)
        assert fn(x)[0] != before
        inference.set_observed(model, design, obs.values)
        assert fn(x)[0] == pytest.approx(before)


# -- slow: verdicts on simulated data, SBC -------------------------------------------------------

@pytest.mark.slow
def test_clearly_different_hypotheses_give_a_near_diagonal_matrix(tmp_path):
    # "clearly different": TAFEL's j0 is bounded below the currents, so its law cannot turn linear (ohmic);
    # with j0 free to grow, ohmic data were "indistinguishable" in 2 of 3 replicates, rightly
    path, _ = _iv(tmp_path, [OHMIC, TAFEL], draws=1000, tune=300)  # at most 1000: converged fits stop sooner
    out = tmp_path / "out"
    assert main(["calibrate", str(path), "--replicates", "3", "--from", "prior", "--out", str(out),
                 "--scheduler", "serial"]) == 0
    rows = pd.read_csv(out / "calibration.csv")
    assert list(rows.columns) == calibrate.COLUMNS and len(rows) == 6
    assert set(rows.verdict) <= set(calibrate.VERDICTS)
    table = pd.read_csv(out / "confusion_iv.csv").set_index("generator")
    for generator in ("ohmic", "tafel"):  # near-diagonal: each generator's data pick it, none picks the other
        assert table.loc[generator, "chose the generator"] >= 2, table  # of 3
        assert table.loc[generator, "chose another"] == 0, table
    assert table.loc["all", "chose the generator"] >= 5, table  # of 6
    for name in ("figures/confusion_iv.png", "sbc.csv", "figures/sbc_iv_ohmic.png", "report.md", "report.html"):
        assert (out / name).is_file(), name
    assert "Calibration" in (out / "report.md").read_text()
    # resumed: nothing is fitted again, the same rows come back
    again = calibrate.run(path, out, replicates=3, source="prior", scheduler="serial", log=lambda _: None)
    pd.testing.assert_frame_equal(again.reset_index(drop=True), rows, check_dtype=False)


@pytest.mark.slow
def test_nested_hypotheses_are_mostly_indistinguishable(tmp_path):
    path, _ = _iv(tmp_path, [OHMIC, OFFSET], draws=400, tune=300)
    rows = calibrate.run(path, tmp_path / "out", replicates=4, scheduler="processes", workers=2, log=lambda _: None)
    assert (rows.verdict == "indistinguishable").mean() >= 0.6
    table = calibrate.confusion(rows).set_index("generator")
    assert table.loc["all", "fp_low"] <= calibrate.NOMINAL <= table.loc["all", "fp_high"]


@pytest.mark.slow
def test_sbc_uniform_for_the_right_likelihood_and_flags_a_wrong_one(tmp_path):
    _, experiment = _iv(tmp_path, [OHMIC, TAFEL])
    h = hypotheses.load(experiment.hypothesis_paths[0])
    obs = observe(study.load_data(experiment, "iv"))
    priors = inference.priors_for(h, obs)
    settings = {"draws": 200, "tune": 200, "chains": 2}
    right = calibrate.simulation_based_calibration(h, obs, priors, replicates=8, sampler=settings, seed=1)
    assert set(right.parameter) == {"R", "noise_sigma"}
    assert not sbc.uniformity(right).flagged.any()
    # a wrong likelihood: noise held near a fifth of its true size, so every posterior is too narrow
    noise = {"model": "absolute", "sigma": {"dist": "lognormal", "median": 0.001, "sd_log": 0.05}}
    wrong_h = hypotheses.from_table({**tomllib.loads(OHMIC), "name": "overconfident", "noise": noise})
    wrong = calibrate.simulation_based_calibration(h, obs, priors, replicates=8, sampler=settings, seed=1,
                                                   fitted=wrong_h, fitted_priors=inference.priors_for(wrong_h, obs))
    tests = sbc.uniformity(wrong).set_index("parameter")
    assert tests.loc["noise_sigma", "flagged"]
    r = wrong.loc[wrong.parameter == "R", "rank"]
    assert ((r <= 10) | (r >= sbc.RANK_DRAWS - 10)).mean() >= 0.5  # too-narrow posteriors: ranks pile at both ends
    right_r = right.loc[right.parameter == "R", "rank"]
    assert ((right_r <= 10) | (right_r >= sbc.RANK_DRAWS - 10)).mean() < 0.5
