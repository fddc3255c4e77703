"""Leave-future-out: a drift law that forecasts the later spectra beats one that does not."""

import numpy as np
import pandas as pd
import pytest

from mgbayes import cli, forecast, hypotheses, inference, io, simulate
from mgbayes.errors import HypothesisError
from mgbayes.hypotheses import MODELS_DIR
from mgbayes.study import load_study
from tests.studies import CT, TRUTH, write_small_study


def write_study(root, extra=""):
    """The small study plus a second experiment "ocv_forecast" on the same cell, with ``extra`` settings."""
    return write_small_study(root, times_h=[0.5, 3, 6, 10, 15, 20], title="forecast test", extra=f"""
[[experiment]]
name = "ocv_forecast"
data = "cell.mpt"
area_cm2 = 1.131
symmetric = true
hypotheses = "hyp"
{extra}
""")


@pytest.mark.slow
def test_study_ranks_drift_laws_by_forecast(tmp_path, capsys):
    write_study(tmp_path, 'unit = "future"\nforecast = { min_spectra = 3 }')
    out = tmp_path / "out"
    assert cli.main(["run", str(tmp_path / "study.toml"), "--out", str(out), "--quick"]) == 0
    printed = capsys.readouterr().out
    assert "ocv_forecast/charge_transfer: inputs the same as ocv/charge_transfer's, fitted once" in printed
    assert "sampling 2 fit(s)" in printed  # fits are shared with "ocv"
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
    assert result.refit_problems == []  # sound refits; the far future of each refit is not an estimate of its own


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
