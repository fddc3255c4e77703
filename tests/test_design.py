"""mgbayes design: candidate measurements and their ranking."""

import numpy as np
import pandas as pd
import pytest

from mgbayes import design, hypotheses, simulate
from mgbayes.cli import main
from mgbayes.errors import HypothesisError
from mgbayes.observations import observe

from .calibration_studies import OFFSET, OHMIC, write_iv_study
from .studies import CT, TRUTH


def _series_obs():
    h = hypotheses.load(CT)
    return observe(simulate.spectra(h, TRUTH, times_h=np.linspace(0.5, 5.0, 10),
                                    frequency=simulate.frequency_grid(1e5, 0.1, 5), area_cm2=1.0, seed=1))


def test_default_candidates_for_a_spectra_series(tmp_path):
    obs = _series_obs()
    study = tmp_path / "s.toml"
    study.write_text('[[experiment]]\nname = "ocv"\n[[experiment.design]]\nname = "80 spectra"\nspectra = 80\n'
                     '[[experiment.design]]\nname = "quiet"\nnoise = 0.5\n')
    options = design.candidates(study, "ocv", obs)
    assert list(options) == [design.AS_MEASURED, "f_min / 10", "f_max x 10", "double duration", "80 spectra", "quiet"]
    low = options["f_min / 10"][0]
    assert low.frequency.min() == pytest.approx(0.01) and low.frequency.max() == pytest.approx(1e5)
    assert low.frequency.size == 36 and low.values.shape == (10, 36, 2)  # 5 per decade over 7 decades
    longer = options["double duration"][0].inputs["t"]
    assert longer.size == 20 and longer[0] == pytest.approx(0.5) and np.diff(longer) == pytest.approx(0.5)
    assert options["80 spectra"][0].values.shape[0] == 80 and options["quiet"][1] == 0.5


def test_candidates_subset_and_spectra_over_a_new_duration(tmp_path):
    obs = _series_obs()
    study = tmp_path / "s.toml"
    study.write_text('[[experiment]]\nname = "ocv"\n[[experiment.design]]\nname = "20 h, 10 spectra"\n'
                     'duration_h = 20\nspectra = 10\n')
    options = design.candidates(study, "ocv", obs, only=["20 h, 10 spectra"])
    assert list(options) == [design.AS_MEASURED, "20 h, 10 spectra"]
    t = options["20 h, 10 spectra"][0].inputs["t"]
    assert t.size == 10 and t[0] == pytest.approx(0.5) and t[-1] == pytest.approx(20.5)
    with pytest.raises(HypothesisError, match="no design candidate named 'nope'; known: .*'f_min / 10'"):
        design.candidates(study, "ocv", obs, only=["nope"])


def test_between_names_hypotheses_of_the_experiment(tmp_path, capsys):
    path = write_iv_study(tmp_path / "study", [OHMIC, OFFSET])
    assert main(["design", str(path), "--between", "ohmic", "tafel", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--between ohmic tafel" in err and "['ohmic', 'ohmic_offset']" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "fits").exists()  # refused before any fit


def test_a_bad_candidate_names_the_study_and_the_key(tmp_path):
    obs = _series_obs()
    study = tmp_path / "s.toml"
    study.write_text('[[experiment]]\nname = "ocv"\n[[experiment.design]]\nname = "x"\ncurrent_factor = 2\n')
    with pytest.raises(HypothesisError, match="current_factor applies to I-V"):
        design.candidates(study, "ocv", obs)
    study.write_text('[[experiment]]\nname = "ocv"\n[[experiment.design]]\nname = "x"\nf_min = -1\n')
    with pytest.raises(HypothesisError, match=r"s.toml.*f_min = -1"):
        design.candidates(study, "ocv", obs)


@pytest.mark.slow
def test_design_ranks_a_quieter_measurement_above_the_tied_one(tmp_path):
    path = write_iv_study(tmp_path / "study", [OHMIC, OFFSET], draws=400, tune=300,
                          extra='[[experiment.design]]\nname = "tenth of the noise"\nnoise = 0.1\n')
    out = tmp_path / "out"
    assert main(["design", str(path), "--replicates", "2", "--out", str(out), "--workers", "2"]) == 0
    table = pd.read_csv(out / "design.csv")
    assert list(table.columns[:5]) == ["experiment", "candidate", "generator", "p_decisive", "expected_elpd_diff"]
    assert set(table.candidate) == {design.AS_MEASURED, "tenth of the noise"}
    assert set(table.generator) == {"ohmic", "ohmic_offset"}
    mean = table.groupby("candidate").expected_elpd_diff.mean()
    assert mean["tenth of the noise"] > mean[design.AS_MEASURED]
    assert (out / "figures" / "design_iv.png").is_file() and "measure 'tenth of the noise'" in (out / "report.md").read_text()
