"""The public API (``import mgbayes``): selection, hypotheses from circuits, a fit that ArviZ reads whole."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import mgbayes
from mgbayes import hypotheses, simulate, study
from mgbayes.errors import DataError, HypothesisError
from tests.studies import CT, TRUTH

DUMMY_CELL = Path(__file__).resolve().parents[2] / "shared" / "data" / "instrument-files" / "exampleDataBioLogic.mpt"


@pytest.fixture(scope="module")
def series():
    return simulate.spectra(hypotheses.load(CT), TRUTH, times_h=[0.5, 2, 5, 10, 20],
                            frequency=simulate.frequency_grid(1e5, 0.05, 4), area_cm2=1.131, seed=5)


def test_public_names_are_exported():
    for name in ("read", "Circuit", "load", "fit", "compare", "run", "predict", "plot", "CircuitModel"):
        assert callable(getattr(mgbayes, name)), name
    assert mgbayes.compare.Comparison  # the module stays reachable: mgbayes.compare is both
    assert mgbayes.load(CT).name == "charge_transfer"


def test_series_selection_by_index_time_and_frequency(series):
    picked = series[[0, 2, 4]]
    assert isinstance(picked, mgbayes.SpectrumSeries) and list(picked.time_h) == [0.5, 5, 20]
    assert list(series[np.array([True, False, True, False, False])].time_h) == [0.5, 5]
    assert list(series.select(time_h=(1, 10)).time_h) == [2, 5, 10]
    assert list(series.select(time_h=(None, 2)).time_h) == [0.5, 2]
    cropped = series.select(index=[1, 3], frequency_Hz=(0.1, 1e3))
    assert len(cropped) == 2 and cropped.frequency.min() >= 0.1 and cropped.frequency.max() <= 1e3
    assert cropped[0].n_points < series[1].n_points
    for bad, message in (({"index": [7]}, "out of range"), ({"time_h": (50, 60)}, "no spectrum"),
                         ({"frequency_Hz": (1e6, 1e7)}, "keeps 0"), ({"time_h": (5, 1)}, "low > high")):
        with pytest.raises(DataError, match=message):
            series.select(**bad)


def test_study_selection_keys(tmp_path, series):
    from mgbayes import io

    io.write_mpt(series, tmp_path / "cell.mpt")
    (tmp_path / "s.toml").write_text(f"""
[[experiment]]
name = "ocv"
data = "cell.mpt"
hypotheses = "{CT}"
spectra = [0, 1, 2, 3]
time_h = [1, 30]
frequency_Hz = [0.1, 1e4]
""")
    experiment = study.load_study(tmp_path / "s.toml").experiments[0]
    data = study.load_data(experiment, "impedance")
    assert list(data.time_h) == pytest.approx([2, 5, 10]) and data.frequency.max() <= 1e4
    (tmp_path / "bad.toml").write_text(f'[[experiment]]\nname = "a"\ndata = "cell.mpt"\nhypotheses = "{CT}"\n'
                                       'frequency_Hz = [1]\n')
    with pytest.raises(HypothesisError, match="frequency_Hz = \\[0.1, 1e5\\]"):
        study.load_study(tmp_path / "bad.toml")


def test_hypothesis_from_circuit_string_and_circuit():
    h = mgbayes.hypothesis("R0-p(R1,CPE1)")
    assert h.name == "R0-p(R1,CPE1)" and h.free_parameters()[:2] == ["R0", "R1"]
    assert mgbayes.hypothesis(mgbayes.Circuit("R0-p(R1,C1)")).name == "R0-p(R1,C1)"
    assert "[circuit]" in h.text  # a result can rebuild its hypothesis
    with pytest.raises(Exception, match="R0-p\\(R1"):
        mgbayes.hypothesis("R0-p(R1")


@pytest.fixture(scope="module")
def dummy_fit():
    if not DUMMY_CELL.is_file():
        pytest.skip("shared instrument files not present")
    return mgbayes.fit("R0-p(R1,CPE1)", mgbayes.read(DUMMY_CELL), draws=200, tune=300, chains=2, seed=4)


@pytest.mark.slow
def test_fit_result_is_arviz_complete(dummy_fit):
    import arviz as az
    import matplotlib

    matplotlib.use("Agg")
    r = dummy_fit
    groups = {"prior", "prior_predictive", "posterior", "posterior_predictive", "log_likelihood", "observed_data"}
    assert groups <= set(r.children)
    post, pp = r["posterior"], r["posterior_predictive"]
    assert (pp["Z"]["draw"].values == post["draw"].values).all() and pp.sizes["chain"] == post.sizes["chain"]
    for group in groups | {"constant_data", "sample_stats"}:
        for name, da in r[group].data_vars.items():
            assert da.attrs.get("unit"), f"{group}/{name} has no unit"
    assert post["R1"].attrs["unit"] == "Ohm" and post["CPE1_T"].attrs["unit"] == "F s^(P-1)"
    assert post["noise_sigma"].attrs["unit"] == "1"
    az.plot_prior_posterior(r)
    pit = az.loo_pit(r)["Z"]  # ArviZ's own, on the result as it is
    assert pit.dims == r["observed_data"]["Z"].dims and 0 <= float(pit.min()) and float(pit.max()) <= 1
    xr.testing.assert_identical(mgbayes.loo_pit(r)["Z"], pit)
    az.plot_loo_pit(r)
    # the prior is wide, the posterior narrow
    assert float(r["prior"]["R1"].std()) > 10 * float(post["R1"].std())


@pytest.mark.slow
def test_predict_plot_and_impedance_py_verbs(dummy_fit):
    import matplotlib

    matplotlib.use("Agg")
    observed = dummy_fit["observed_data"]["Z"].isel(time=0)
    z = mgbayes.predict(dummy_fit)
    assert z.shape == observed.shape[:1]
    data = observed.sel(part="re").values + 1j * observed.sel(part="im").values
    assert np.median(np.abs(z - data) / np.abs(data)) < 0.05
    assert mgbayes.predict(dummy_fit, [1e3, 1.0], draws=True).shape == (400, 2)
    assert mgbayes.plot(dummy_fit).axes
    model = mgbayes.CircuitModel("R0-p(R1,CPE1)")
    model.result = dummy_fit
    assert "R1" in repr(model) and model.predict([10.0]).shape == (1,)


@pytest.mark.slow
def test_the_issue_one_liner_runs(tmp_path):
    if not DUMMY_CELL.is_file():
        pytest.skip("shared instrument files not present")
    code = (f"import mgbayes; s = mgbayes.read({str(DUMMY_CELL)!r}); "
            "r = mgbayes.fit('R0-p(R1,CPE1)', s, draws=100, tune=200, chains=2); print(r)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PATH": "/usr/bin:/bin",
                               "HOME": str(Path.home())})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Group: /prior_predictive" in done.stdout and "Group: /posterior" in done.stdout
