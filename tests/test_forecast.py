"""Leave-future-out: a drift law that forecasts the later spectra beats one that does not."""

import shutil

import numpy as np
import pandas as pd
import pytest

from mgbayes import cli, forecast, hypotheses, inference, io, simulate
from mgbayes.errors import HypothesisError
from mgbayes.hypotheses import MODELS_DIR
from mgbayes.study import load_study

CT = MODELS_DIR / "ocv_drift" / "charge_transfer.toml"
TRUTH = {"R_el": 30.0, "R_ct_0": 2e4, "R_ct_rate": 0.45, "CPE_dl_T": 4e-5, "CPE_dl_P": 0.9}


def write_study(root, extra=""):
    series = simulate.spectra(hypotheses.load(CT), TRUTH, times_h=[0.5, 3, 6, 10, 15, 20],
                              frequency=simulate.frequency_grid(1e5, 0.05, 4), area_cm2=1.131, seed=5)
    io.write_mpt(series, root / "cell.mpt")
    (root / "hyp").mkdir()
    shutil.copy(CT, root / "hyp")
    (root / "hyp" / "constant.toml").write_text(CT.read_text().replace('name = "charge_transfer"', 'name = "no_drift"')
                                                .replace('R_ct = "linear"', 'R_ct = "constant"'))
    (root / "study.toml").write_text(f"""
title = "forecast test"
provenance = "synthetic"
[sampler]
draws = 200
tune = 300
chains = 2
seed = 3
[[experiment]]
name = "ocv"
data = "cell.mpt"
area_cm2 = 1.131
symmetric = true
hypotheses = "hyp"
[[experiment]]
name = "ocv_forecast"
data = "cell.mpt"
area_cm2 = 1.131
symmetric = true
hypotheses = "hyp"
{extra}
""")
    return series


@pytest.mark.slow
def test_study_ranks_drift_laws_by_forecast(tmp_path, capsys):
    write_study(tmp_path, 'unit = "future"\nforecast = { min_spectra = 3 }')
    out = tmp_path / "out"
    assert cli.main(["run", str(tmp_path / "study.toml"), "--out", str(out), "--quick"]) == 0
    printed = capsys.readouterr().out
    assert "ocv_forecast/charge_transfer: inputs unchanged, reusing" in printed  # fits are shared with "ocv"
    assert "[ocv_forecast] leave-future-out (forecast)" in printed
    table = pd.read_csv(out / "comparison.csv").set_index(["experiment", "hypothesis"])
    assert table.loc[("ocv_forecast", "charge_transfer"), "rank"] == 1
    assert table.loc[("ocv_forecast", "no_drift"), "verdict"].startswith("worse than best")
    assert "leave-future-out" in (out / "report.md").read_text()


@pytest.mark.slow
def test_lfo_scores_each_later_spectrum():
    series = simulate.spectra(hypotheses.load(CT), TRUTH, times_h=np.linspace(0, 20, 5),
                              frequency=simulate.frequency_grid(1e5, 0.05, 3), area_cm2=1.131, seed=2)
    h = hypotheses.load(CT)
    fit = inference.fit(h, series, draws=200, tune=300, chains=2, random_seed=1)
    result = forecast.lfo(h, series, fit, min_spectra=2, method="exact", draws=150, tune=250, random_seed=4)
    assert result.elpd_i.sizes["time"] == 3 and result.n_refits == 3
    np.testing.assert_allclose(result.elpd_i.coords["time"], series.time_h[2:])
    assert np.isfinite(result.elpd) and result.elpd == pytest.approx(float(result.elpd_i.sum()))


def test_forecast_needs_a_series_and_room_to_forecast():
    iv = io.read_iv(MODELS_DIR.parent / "data" / "paper" / "plating_iv.csv")
    h = hypotheses.load(MODELS_DIR / "plating_iv" / "tunnelling.toml")
    with pytest.raises(ValueError, match="one spectra series over time"):
        forecast.lfo(h, iv, None)
    series = simulate.spectra(hypotheses.load(CT), TRUTH, times_h=[0, 10], frequency=simulate.frequency_grid(1e5, 1, 2),
                              area_cm2=1.0)
    with pytest.raises(ValueError, match="leaves nothing to forecast"):
        forecast.lfo(hypotheses.load(CT), series, None, min_spectra=2)


def test_forecast_options_are_checked(tmp_path):
    write_study(tmp_path, 'forecast = { min_spectra = 3 }')
    with pytest.raises(HypothesisError, match='forecast options need unit = "future"'):
        load_study(tmp_path / "study.toml")
    (tmp_path / "study.toml").write_text((tmp_path / "study.toml").read_text().replace(
        "forecast = { min_spectra = 3 }", 'unit = "future"\nforecast = { origin = 3 }'))
    with pytest.raises(HypothesisError, match="forecast = .*keys from"):
        load_study(tmp_path / "study.toml")
