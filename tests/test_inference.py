"""Sampling: real dummy cells against least squares, posterior recovery, results files."""

import re
import warnings
from pathlib import Path

import arviz as az
import numpy as np
import pytest

from mgbayes import compare, diagnostics, fits, fitting, hypotheses, inference, io, report, sampler, simulate

FILES = Path(__file__).resolve().parents[2] / "shared" / "data" / "instrument-files"
needs_files = pytest.mark.skipif(not FILES.is_dir(), reason=f"instrument files not found at {FILES}")


def circuit_hypothesis(text):
    return hypotheses.from_table({"name": text, "family": "dummy", "physics": "equivalent circuit",
                                  "circuit": {"electrode": text, "electrodes": 1}})


@pytest.fixture(scope="module")
def ct_fit():
    h = hypotheses.load(Path(__file__).parent / "data" / "single_arc.toml")
    truth = {"R_el": 30.0, "R_ct_0": 2e4, "R_ct_rate": 0.45, "CPE_dl_T": 4e-5, "CPE_dl_P": 0.9}
    data = simulate.spectra(h, truth, times_h=np.linspace(0, 20, 6), frequency=simulate.frequency_grid(1e5, 0.02, 6),
                            area_cm2=1.13, seed=3, noise=0.01)
    return h, truth, data, inference.fit(h, data, draws=500, tune=500, chains=2, random_seed=4)


@needs_files
@pytest.mark.parametrize("name", ["Circuit1_EIS_1.z", "Circuit2_EIS_1.z", "Circuit3_EIS_1.z"])
def test_dummy_cell_posterior_agrees_with_least_squares(name):
    spectrum = io.read(FILES / name)
    h = circuit_hypothesis("R0-p(R1,C1)")
    lsq, rms = fitting.least_squares(h.electrode, spectrum.frequency, spectrum.impedance)
    assert rms < 0.05, f"{name}: least squares does not fit ({rms:.3f})"
    idata = inference.fit(h, spectrum, draws=400, tune=400, chains=2, random_seed=1)
    post = idata["posterior"]
    for p, value in lsq.items():
        median = float(post[p].median())
        lo, hi = np.quantile(post[p].values, [0.001, 0.999])
        assert median == pytest.approx(value, rel=0.02), p
        assert lo <= value <= hi or abs(median / value - 1) < 0.005, p


@needs_files
@pytest.mark.slow
def test_loo_does_not_prefer_a_needlessly_complex_circuit():
    spectrum = io.read(FILES / "Circuit1_EIS_1.z")
    # The second arc of the complex circuit is not identified (the arcs can swap and either can vanish), so its
    # chains disagree whatever the step size: no second fit (it cost 50 s), the claim is about LOO's penalty.
    results = {text: inference.fit(circuit_hypothesis(text), spectrum, draws=500, tune=700, chains=2, random_seed=2,
                                   retry=False)
               for text in ("R0-p(R1,C1)", "R0-p(R1,C1)-p(R2,C2)")}
    c = compare.compare(results)
    complex_row = c.table.set_index("hypothesis").loc["R0-p(R1,C1)-p(R2,C2)"]
    simple_row = c.table.set_index("hypothesis").loc["R0-p(R1,C1)"]
    # the extra arc buys nothing: the simple circuit is best or the two are indistinguishable
    assert simple_row.verdict == "best" or complex_row.verdict == "best" and simple_row.verdict == "indistinguishable from best"


def test_sampling_in_other_coordinates_keeps_the_prior():
    """[coordinates] with a non-constant Jacobian: on data that say nothing the posterior is the stated prior.

    R1 = 100 e^u and C1 = 1e-5 e^(v - u) have |det J| = R1 C1; without that term log R1 would sit 0.25
    (half a prior sd) low.
    """
    table = {"name": "arc", "family": "dummy", "physics": "one arc", "circuit": {"electrode": "R0-p(R1,C1)", "electrodes": 1},
             "priors": {"R0": {"dist": "lognormal", "median": 10.0, "sd_log": 0.5},
                        "R1": {"dist": "lognormal", "median": 100.0, "sd_log": 0.5},
                        "C1": {"dist": "lognormal", "median": 1e-5, "sd_log": 0.5}},
             "noise": {"model": "absolute", "sigma": 1e6},  # data that cannot inform the fit
             "coordinates": {"sampled": ["u", "v"], "R1": "100 * exp(u)", "C1": "1e-5 * exp(v - u)"}}
    h = hypotheses.from_table(table)
    data = simulate.spectra(h, {"R0": 10.0, "R1": 100.0, "C1": 1e-5}, times_h=[0.0],
                            frequency=simulate.frequency_grid(1e4, 1.0, 3), symmetric=False, noise=0.0).spectra[0]
    idata = inference.fit(h, data, draws=1000, tune=500, chains=2, random_seed=5)
    post = idata["posterior"]
    assert {"u", "v", "R1", "C1"} <= set(post.data_vars) and post["u"].attrs["unit"] == "1"
    assert {"R1", "C1"} <= set(idata["prior"].data_vars) and {"R1", "C1"} <= set(idata["log_prior"].data_vars)
    table = set(report.parameter_table(idata).parameter)
    assert {"R0", "R1", "C1"} <= table and not {"u", "v"} & table  # the physical parameters, not the coordinates
    for name, median in (("R1", 100.0), ("C1", 1e-5), ("R0", 10.0)):
        x = np.log(post[name].values.ravel())
        assert abs(x.mean() - np.log(median)) < 0.08, (name, x.mean() - np.log(median))
        assert 0.45 < x.std() < 0.55, (name, x.std())


def test_posterior_recovers_true_parameters(ct_fit):
    h, truth, data, idata = ct_fit
    post = idata["posterior"]
    for name, value in truth.items():
        lo, hi = np.quantile(post[name].values, [0.03, 0.97])
        assert lo <= value <= hi, f"{name}: {value} outside 94 % interval [{lo:.4g}, {hi:.4g}]"
    assert int(idata.attrs["converged"]) == 1, idata.attrs["diagnostics"]


def test_result_holds_units_derived_quantities_and_provenance(ct_fit, tmp_path):
    h, truth, data, idata = ct_fit
    # one log-likelihood value per observed value (ArviZ's layout); LOO sums Re and Im of a point into one unit
    assert idata["log_likelihood"]["Z"].dims == ("chain", "draw", "time", "frequency", "part")
    per_point = compare.unit_loglik(idata, "point")
    assert per_point.dims == ("chain", "draw", "time", "frequency")
    np.testing.assert_allclose(per_point.values, idata["log_likelihood"]["Z"].values.sum(axis=-1))
    assert idata["posterior_predictive"]["Z"].dims[2:] == ("time", "frequency", "part")
    assert idata["posterior"]["R_ct"].dims == ("chain", "draw", "time")
    c_dl = idata["posterior"]["C_dl"]
    assert c_dl.attrs["unit"] == "F cm-2"
    # Hsu–Mansfeld capacitance of the truth at the first time point
    true_c = truth["CPE_dl_T"] ** (1 / 0.9) * truth["R_ct_0"] ** ((1 - 0.9) / 0.9)
    lo, hi = np.quantile(c_dl.isel(time=0).values, [0.03, 0.97])
    assert lo <= true_c <= hi
    path = inference.save(idata, tmp_path / "fit.nc")
    back = az.from_netcdf(path)
    assert {"posterior", "posterior_predictive", "log_likelihood", "observed_data"} <= set(back.children)
    assert "charge_transfer" in back.attrs["hypothesis_text"]
    assert "pymc" in back.attrs["versions"]
    assert not list(tmp_path.glob("*.tmp"))


def test_a_light_fit_has_the_same_draws_loglik_and_diagnostics_without_the_other_groups(ct_fit):
    h, _, data, full = ct_fit
    light = inference.fit(h, data, draws=500, tune=500, chains=2, random_seed=4, light=True)
    for name in light["posterior"].data_vars:
        np.testing.assert_array_equal(light["posterior"][name].values, full["posterior"][name].values)
    np.testing.assert_array_equal(light["log_likelihood"]["Z"].values, full["log_likelihood"]["Z"].values)
    np.testing.assert_array_equal(light["observed_data"]["Z"].values, full["observed_data"]["Z"].values)
    for key in ("diagnostics", "converged", "rhat_max", "divergences", "modes_disagree"):
        assert light.attrs[key] == full.attrs[key], key
    assert compare.loo(light).elpd == pytest.approx(compare.loo(full).elpd, abs=1e-9)
    assert not {"posterior_predictive", "prior", "prior_predictive", "log_prior"} & set(light.children)
    assert "R_ct" in full["posterior"] and "R_ct" not in light["posterior"]  # the drifting R_ct(t): not computed


def test_the_whole_models_log_density_graph_is_built_once_until_a_variable_is_added():
    import pymc as pm

    with inference.Model() as model:
        pm.Normal("x")
        first = model.logp()
        assert model.logp() is first  # pm.sample asks for it on every call
        assert model.logp(sum=False) is not first
        pm.Normal("y", mu=model["x"], observed=1.0)
        second = model.logp()
    assert second is not first and model.logp() is second
    assert model.compile_fn(second)({"x": 0.0}) == pytest.approx(-0.5 * np.log(2 * np.pi) * 2 - 0.5)


def test_pointwise_loglik_sums_re_and_im(ct_fit):
    h, truth, data, idata = ct_fit
    n_points = len(data) * data.frequency.size
    assert compare.loo(idata).n_data_points == n_points
    assert compare.loo(idata, unit="spectrum").n_data_points == len(data)


def test_convergence_problems_are_reported_by_name():
    h = circuit_hypothesis("R0-p(R1,C1)")
    data = simulate.spectra(h, {"R0": 10.0, "R1": 100.0, "C1": 1e-5}, times_h=[0.0],
                            frequency=simulate.frequency_grid(1e5, 0.1, 5), symmetric=False, seed=0)
    with pytest.warns(diagnostics.ConvergenceWarning, match="ESS"):
        idata = inference.fit(h, data, draws=30, tune=30, chains=2, random_seed=0)
    assert int(idata.attrs["converged"]) == 0
    assert "bulk ESS" in idata.attrs["diagnostics"]


@pytest.mark.parametrize("divergences, retried", [(diagnostics.DIVERGENCES_HANDFUL + 1, 1),
                                                   (diagnostics.DIVERGENCES_HANDFUL, 0)])
def test_more_divergences_than_a_verdict_allows_mean_one_more_fit_with_smaller_steps(monkeypatch, divergences,
                                                                                     retried):
    h = circuit_hypothesis("R0-p(R1,C1)")
    data = simulate.spectra(h, {"R0": 10.0, "R1": 100.0, "C1": 1e-5}, times_h=[0.0],
                            frequency=simulate.frequency_grid(1e5, 0.1, 5), symmetric=False, seed=0)
    calls, sample, finish = [], inference.sample, inference.finish
    monkeypatch.setattr(inference, "sample", lambda model, **kw: calls.append(kw) or sample(model, **kw))

    first = []

    def first_divergent(*args, **kw):  # the first fit reports `divergences` divergent transitions (under 1 %)
        idata = finish(*args, **kw)
        if len(calls) == 1:
            idata.attrs["divergences"] = divergences
            first.append(idata.attrs["diagnostics"])
        return idata

    monkeypatch.setattr(inference, "finish", first_divergent)
    with warnings.catch_warnings():  # a short fit: ESS may fall short of 400 (not what this test is about)
        warnings.simplefilter("ignore", diagnostics.ConvergenceWarning)
        idata = inference.fit(h, data, draws=400, tune=200, chains=2, random_seed=0)  # 1 % of 800 draws: 8
    assert [(c["tune"], c["target_accept"]) for c in calls] == [(200, 0.9), (sampler.RETRY_TUNE, 0.97)][:1 + retried]
    assert int(idata.attrs["retried"]) == retried
    # what the result holds was sampled with these settings; why it was sampled again is recorded and logged
    assert (idata.attrs["tune"], idata.attrs["target_accept"]) == [(200, 0.9), (sampler.RETRY_TUNE, 0.97)][retried]
    assert idata.attrs.get("first_run") == (first[0].removeprefix(f"{h.name}: ") if retried else None)
    note = fits.retried(idata)
    assert (note == "") == (not retried)
    if retried:
        assert note == f" (sampled again with target_accept 0.97 and {sampler.RETRY_TUNE} tuning; first run: " \
                       f"{idata.attrs['first_run']})"


def test_kind_mismatch_is_an_error():
    h = hypotheses.from_table({"family": "x", "physics": "y", "kind": "iv",
                               "response": {"overpotential": "b * log10(j)"},
                               "priors": {"b": {"dist": "lognormal", "median": 0.1, "sd_log": 1}}})
    data = simulate.spectra(circuit_hypothesis("R0-C1"), {"R0": 1.0, "C1": 1e-3}, times_h=[0.0],
                            frequency=simulate.frequency_grid(1e3, 1, 3), symmetric=False)
    with pytest.raises(Exception, match="explains iv data"):
        inference.build_model(h, data)


def test_a_fit_and_its_exact_refits_share_one_compiled_density(tmp_path, monkeypatch):
    monkeypatch.setenv("MGBAYES_CACHE_DIR", str(tmp_path))

    h = circuit_hypothesis("R0-p(R1,C1)")
    data = simulate.spectra(h, {"R0": 10.0, "R1": 100.0, "C1": 1e-5}, times_h=[0.0],
                            frequency=simulate.frequency_grid(1e4, 1.0, 3), symmetric=False, seed=0)
    obs = inference.observe(data)
    index = compare.unit_index(obs, "point")
    compiled, _ = inference.build_model(h, obs)  # the fit's model, every unit kept: compiled here and stored on disk
    sampler.density(compiled, key=compiled.mgbayes_key)
    loaded, _ = inference.build_model(h, obs, exclude=index == 0)  # a refit's: the same key, loaded with its own mask
    assert loaded.mgbayes_key == compiled.mgbayes_key
    loaded.logp_dlogp_function = lambda *a, **k: pytest.fail("compiled again instead of loading")
    sampler.density(loaded, key=loaded.mgbayes_key)
    x = np.concatenate([np.ravel(v) for v in compiled.initial_point().values()])
    whole = sampler.density(compiled)(x)[0]
    inference.set_excluded(compiled, index == 0)
    assert sampler.density(loaded)(x)[0] == sampler.density(compiled)(x)[0] != whole  # unit 0's likelihood left out
    monkeypatch.setenv("MGBAYES_CACHE", "0")
    fresh, _ = inference.build_model(h, obs, exclude=index == 2)  # compiled on its own, without unit 2
    for model in (compiled, loaded):  # told to leave out unit 2, compiling nothing
        inference.set_excluded(model, index == 2)
    draws = [sampler.sample(m, draws=20, tune=20, chains=1, cores=1, rng=np.random.default_rng(5))["posterior"]["R1"].values
             for m in (compiled, loaded, fresh)]
    np.testing.assert_array_equal(draws[0], draws[2])
    np.testing.assert_array_equal(draws[1], draws[2])


@pytest.mark.parametrize("failures", [1, 2])
def test_a_refit_whose_chains_clearly_failed_is_sampled_once_more_with_smaller_steps(monkeypatch, failures):

    h = circuit_hypothesis("R0-p(R1,C1)")
    data = simulate.spectra(h, {"R0": 10.0, "R1": 100.0, "C1": 1e-5}, times_h=[0.0],
                            frequency=simulate.frequency_grid(1e4, 1.0, 3), symmetric=False, seed=0)
    calls, sample = [], sampler.sample
    monkeypatch.setattr(sampler, "sample", lambda model, **kw: calls.append(kw) or sample(model, **kw))
    check = diagnostics.check

    def failing(idata, name="fit", **kw):  # the first `failures` refits report divergences in 2 % of their draws
        report = check(idata, name, **kw)
        if len(calls) <= failures:
            report.divergences = 20
        return report

    monkeypatch.setattr(diagnostics, "check", failing)
    wrapper = compare.Refits(h, data, unit="point", draws=250, tune=100, chains=2, rng=np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", diagnostics.ConvergenceWarning)
        wrapper.sample(wrapper.sel_observations([1])[0])
    assert [(c["tune"], c.get("target_accept", 0.9)) for c in calls] == [(100, 0.9), (200, 0.97)]
    if failures == 1:
        assert not wrapper.problems  # the second refit stands, and did not fail
    else:  # one short line per failed refit (the whole diagnosis went to the log)
        assert len(wrapper.problems) == 1
        assert re.fullmatch(r"without point unit\(s\) \[1\]: R-hat \d\.\d{3}, 20 divergent transitions",
                            wrapper.problems[0])


def test_a_refit_stops_once_more_draws_could_change_no_check():
    h = circuit_hypothesis("R0-p(R1,C1)")
    data = simulate.spectra(h, {"R0": 10.0, "R1": 100.0, "C1": 1e-5}, times_h=[0.0],
                            frequency=simulate.frequency_grid(1e4, 1.0, 3), symmetric=False, seed=0)
    wrapper = compare.Refits(h, data, unit="point", draws=2000, tune=300, chains=2, rng=np.random.default_rng(0),
                             cores=1)
    idata = wrapper.sample(wrapper.sel_observations([1])[0])
    n = idata["posterior"].sizes["draw"]
    assert n < 2000 and diagnostics.check(idata).enough_draws(2 * 2000) and not wrapper.problems


def test_refits_with_outside_evidence_share_one_model_and_move_only_its_masks(tmp_path, monkeypatch):
    """Leaving out an outside spectrum changes a mask input of one compiled density, as a model built without it would."""
    monkeypatch.setenv("MGBAYES_CACHE_DIR", str(tmp_path))
    import dataclasses


    h = circuit_hypothesis("R0-p(R1,C1)")
    grid = simulate.frequency_grid(1e4, 1.0, 3)
    own = simulate.spectra(h, {"R0": 10.0, "R1": 100.0, "C1": 1e-5}, times_h=[0.0, 1.0], frequency=grid,
                           symmetric=False, seed=0)
    other = circuit_hypothesis("R2-p(R1,C2)")  # shares R1
    outside = simulate.spectra(other, {"R2": 5.0, "R1": 100.0, "C2": 1e-6}, times_h=[0.0, 1.0], frequency=grid,
                               symmetric=False, seed=1)
    ev = inference.Evidence("cellB", other, inference.observe(outside), ("R1",))
    joint = dataclasses.replace(h, evidence=(ev,))
    wrapper = compare.Refits(joint, own, unit="spectrum", draws=10, tune=10, chains=1)
    # own spectra are units 0, 1; then each outside point (2 spectra x 13 frequencies) is one
    assert np.unique(wrapper.evidence_index["cellB"]).tolist() == list(range(2, 2 + 2 * grid.size))
    full, _ = inference.build_model(joint, own)
    point = full.initial_point()
    whole = float(full.compile_logp()(point))
    shared = None
    for left in ([], [0], [3], [1, 2, 20]):
        (mask, outside_masks), _ = wrapper.sel_observations(left)
        model = wrapper._model(mask, outside_masks)
        assert shared is None or model is shared  # one model, one compiled density, for every refit
        shared = model
        x = np.concatenate([np.ravel(point[v.name]) for v in model.value_vars])
        logp = float(sampler.density(model)(x)[0])
        fresh, _ = inference.build_model(joint, own)
        inference.set_excluded(fresh, mask, outside_masks)
        assert logp == pytest.approx(float(fresh.compile_logp()(point)), rel=1e-12)
        assert (logp == pytest.approx(whole, rel=1e-12)) == (not left)
