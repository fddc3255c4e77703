"""NUTS from the mode: Laplace mass matrix, one compile, the density cache."""

import dataclasses
from pathlib import Path

import numpy as np
import pymc as pm
import pytest

from mgbayes import cache, diagnostics, hypotheses, inference, io, sampler, simulate

COV = np.array([[1.0, 0.9], [0.9, 2.0]])


def gaussian_model():
    with pm.Model() as model:
        pm.MvNormal("x", mu=np.array([1.0, -2.0]), cov=COV, dims=None)
    return model


def test_mode_and_laplace_covariance_of_a_gaussian_are_exact():
    model = gaussian_model()
    fn = sampler.density(model)
    mode, logp = sampler.find_mode(fn, np.zeros(2), rng=np.random.default_rng(0))
    np.testing.assert_allclose(mode, [1.0, -2.0], atol=1e-5)
    np.testing.assert_allclose(sampler.laplace_covariance(fn, mode), COV, rtol=1e-5)


def test_mode_search_without_any_finite_density_is_an_error():
    from mgbayes.errors import SamplingError

    with pytest.raises(SamplingError, match="no finite posterior density"):
        sampler.find_mode(lambda x: (-np.inf, np.full(x.size, np.nan)), np.zeros(2), starts=2,
                          rng=np.random.default_rng(0))


def test_flat_and_convex_directions_get_a_broad_finite_variance():
    def fn(x):  # curvature only along x0; x1 is flat, x2 is convex (a saddle, as off a ridge)
        return -0.5 * x[0] ** 2 / 0.01 + 0.5 * x[2] ** 2, np.array([-x[0] / 0.01, 0.0, x[2]])

    cov = sampler.laplace_covariance(fn, np.zeros(3))
    np.testing.assert_allclose(np.diag(cov), [0.01, sampler.VARIANCE_RANGE[1], sampler.VARIANCE_RANGE[1]], rtol=1e-6)


def test_non_finite_gradient_gives_no_laplace_and_an_identity_start():
    cov = sampler.laplace_covariance(lambda x: (0.0, np.full(2, np.nan)), np.zeros(2))
    assert cov is None
    _, mass = sampler.potential(np.zeros(2), None, rng=np.random.default_rng(0))
    assert mass == "diagonal (identity start)"


def test_mass_matrix_is_dense_for_small_models_and_diagonal_for_large(monkeypatch):
    cov = np.eye(3)
    assert sampler.potential(np.zeros(3), cov, rng=np.random.default_rng(0))[1] == "dense (Laplace start)"
    monkeypatch.setattr(sampler, "DENSE_MAX", 2)
    assert sampler.potential(np.zeros(3), cov, rng=np.random.default_rng(0))[1] == "diagonal (Laplace start)"


def test_starting_points_are_distinct_and_finite():
    model = gaussian_model()
    fn = sampler.density(model)
    points = sampler.starting_points(fn, np.array([1.0, -2.0]), COV, 4, rng=np.random.default_rng(1))
    assert len({tuple(p) for p in points}) == 4
    assert all(np.isfinite(fn(p)[0]) and np.all(np.abs(p - [1.0, -2.0]) <= sampler.START_MAX) for p in points)


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="nuts_sampler"):
        sampler.resolve_sampler("stan")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MGBAYES_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("MGBAYES_CACHE", raising=False)
    return tmp_path


def small_problem():
    h = hypotheses.from_table({"name": "R0-p(R1,CPE1)", "family": "t", "physics": "circuit",
                               "circuit": {"electrode": "R0-p(R1,CPE1)", "electrodes": 1}})
    data = simulate.spectra(h, {"R0": 20.0, "R1": 500.0, "CPE1_T": 2e-5, "CPE1_P": 0.88}, times_h=[0.0],
                            symmetric=False, area_cm2=1.0, seed=7, frequency=simulate.frequency_grid(1e5, 0.1, 5))
    return h, data[0]


def test_cached_density_gives_the_same_draws_as_a_fresh_compile(cache_dir):
    h, spectrum = small_problem()
    draws = []
    for compiled in (True, False):  # compile and store, then load
        model, _ = inference.build_model(h, spectrum)
        if not compiled:
            model.logp_dlogp_function = lambda *a, **k: pytest.fail("compiled again instead of loading")
        raw = sampler.sample(model, draws=60, tune=60, chains=2, cores=1, rng=np.random.default_rng(3))
        draws.append(raw["posterior"]["R1"].values)
        assert raw.attrs["mass_matrix"] == "dense (Laplace start)"
    assert len(list(cache_dir.glob("*.pkl"))) == 1
    assert isinstance(model.mgbayes_density, pm.model.core.ValueGradFunction)  # PyMC's own, loaded whole
    np.testing.assert_array_equal(draws[0], draws[1])


def test_cache_key_follows_data_not_left_out_units(cache_dir):
    h, spectrum = small_problem()
    model, obs = inference.build_model(h, spectrum)
    same, _ = inference.build_model(h, spectrum)
    left = np.zeros([len(obs.coords[d]) for d in obs.pointwise_dims], dtype=bool)
    left.flat[0] = True
    excluded, _ = inference.build_model(h, obs, exclude=left)
    changed, _ = inference.build_model(h, dataclasses.replace(obs, values=obs.values * 1.01))
    assert model.mgbayes_key == same.mgbayes_key == excluded.mgbayes_key != changed.mgbayes_key  # a mask is an input
    assert cache.fingerprint(np.arange(3.0)) != cache.fingerprint(np.arange(3.0) + 1e-12)


def test_a_model_with_uniform_priors_is_stored_in_the_cache_with_the_density_of_pymcs_default(cache_dir):
    """Uniform priors (PyMC's interval transform kept a local function) no longer keep a density out of the cache."""
    from mgbayes import priors

    law = hypotheses.load(hypotheses.MODELS_DIR / "plating_iv" / "koutecky_levich.toml")  # alpha ~ uniform(0, 1)
    data = io.read_iv(Path(__file__).parents[1] / "data" / "paper" / "plating_iv.csv")
    model, _ = inference.build_model(law, data)
    sampler.density(model, key=model.mgbayes_key)
    assert (cache_dir / f"{model.mgbayes_key}.pkl").is_file()
    with pm.Model() as ours:
        priors.Prior.from_table({"dist": "uniform", "lower": 0.2, "upper": 3.0}, where="a").to_pymc("a")
        priors.Prior.from_table({"dist": "loguniform", "lower": 0.1, "upper": 10.0}, where="b").to_pymc("b")
    with pm.Model() as default:
        pm.Uniform("a", 0.2, 3.0)
        pm.Uniform("b_log", np.log(0.1), np.log(10.0))
    ours_logp, default_logp = ours.compile_logp(), default.compile_logp()
    for x in np.linspace(-30.0, 30.0, 13):
        assert ours_logp({"a_interval__": x, "b_log_interval__": -x}) == default_logp({"a_interval__": x,
                                                                                       "b_log_interval__": -x})


def test_unreadable_entry_is_removed_and_cache_can_be_off(cache_dir, monkeypatch):
    (cache_dir / "bad.pkl").write_bytes(b"not a pickle")
    assert cache.load("bad") is None and not (cache_dir / "bad.pkl").exists()
    monkeypatch.setenv("MGBAYES_CACHE", "0")
    cache.store("k", object())
    assert not list(cache_dir.glob("*.pkl"))  # only the secret (.secret) is there


def test_cache_keeps_the_newest_entries(cache_dir, monkeypatch):
    monkeypatch.setattr(cache, "MAX_ENTRIES", 2)
    for i in range(4):
        cache.store(f"k{i}", {"i": i})
    assert sorted(p.stem for p in cache_dir.glob("*.pkl")) == ["k2", "k3"]
    assert cache.load("k3") == {"i": 3}
    monkeypatch.setattr(cache, "MAX_BYTES", (cache_dir / "k3.pkl").stat().st_size)
    cache.store("k4", {"i": 4})
    assert [p.stem for p in cache_dir.glob("*.pkl")] == ["k4"]


def test_hierarchical_models_get_a_diagonal_mass_matrix():
    root = hypotheses.MODELS_DIR.parent
    iv = io.read_iv(root / "data" / "paper" / "plating_iv.csv")
    model, _ = inference.build_model(hypotheses.load(hypotheses.MODELS_DIR / "plating_iv" / "tunnelling.toml"),
                                     iv.select(process="plating"))
    h, spectrum = small_problem()
    flat, _ = inference.build_model(h, spectrum)
    assert model.mgbayes_hierarchical and not flat.mgbayes_hierarchical
    assert sampler.potential(np.zeros(3), np.eye(3), rng=np.random.default_rng(0), dense=False)[1] == \
        "diagonal (Laplace start)"


def test_freed_memory_is_kept_for_reuse_under_glibc():
    import platform

    expected = platform.libc_ver()[0] == "glibc"
    assert sampler.reuse_freed_memory() is expected


def two_mode_model():
    """A posterior with two separated modes of comparable height (a barrier of about 20 nats between them)."""
    with pm.Model() as model:
        pm.NormalMixture("x", w=np.array([0.5, 0.5]), mu=np.array([-3.0, 4.0]), sigma=np.array([0.5, 0.7]))
    return model


def test_mode_search_finds_both_modes_and_chains_start_in_each():
    model = two_mode_model()
    fn = sampler.density(model)
    modes = sampler.find_modes(fn, np.zeros(1), rng=np.random.default_rng(0))
    assert sorted(round(float(x[0])) for x, _ in modes) == [-3, 4]
    points = sampler.starting_points(fn, modes, np.eye(1) * 0.25, 4, rng=np.random.default_rng(1))
    assert sorted(np.sign(p[0]) for p in points) == [-1, -1, 1, 1]


def test_a_two_mode_posterior_is_flagged_never_reported_converged():
    from mgbayes import diagnostics

    idata = sampler.sample(two_mode_model(), draws=300, tune=300, chains=4, cores=1, rng=np.random.default_rng(2))
    report = diagnostics.check(idata)
    assert idata.attrs["modes_found"] >= 2
    assert not report.ok and report.rhat_max > 1.1 and diagnostics.verdict_problems(idata), report.text()


def test_draws_far_below_the_best_mode_are_a_gap():
    modes = [(np.zeros(3), 0.0), (np.ones(3), -40.0)]
    assert sampler.mode_gap(modes, [-2.0, -3.5, -1.0], 3) == 0.0  # around the best mode
    assert sampler.mode_gap(modes, [-41.0, -42.0], 3) == pytest.approx(41.0 - 1.5 - sampler.MODE_RANGE)


REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "ssb-ceracharge"
MPR = REAL / "Cell001_Cyc_20uA_25T_30RH_Cycle11to100_01_GEIS_CA1.mpr"


def circuit(text):
    return hypotheses.from_table({"name": text, "family": "arcs", "physics": "circuit",
                                  "circuit": {"electrode": text, "electrodes": 1}})


def test_swappable_arcs_are_ordered_by_time_constant():
    from mgbayes import circuits

    c = circuits.Circuit("R0-p(R1,CPE1)-p(R2,CPE2)-W1")
    group = circuits.exchangeable_arcs(c)[0]
    draws = {"R1": np.array([1.0, 10.0]), "CPE1_T": np.array([1e-3, 1e-6]), "CPE1_P": np.array([1.0, 0.9]),
             "R2": np.array([5.0, 3.0]), "CPE2_T": np.array([1e-6, 1e-3]), "CPE2_P": np.array([0.8, 1.0])}
    ordered = circuits.order_arcs(draws, group)
    tau = [circuits.time_constant(arc, ordered) for arc in group]
    assert np.all(tau[0] < tau[1])
    np.testing.assert_array_equal(ordered["R1"], [5.0, 10.0])  # each arc keeps its own R, T and P
    np.testing.assert_array_equal(ordered["CPE1_P"], [0.8, 0.9])
    assert circuits.exchangeable_arcs(circuits.Circuit("R_el-p(R_ct,CPE_dl)-p(R_f,C_f)")) == []


@pytest.mark.slow
def test_two_swappable_arcs_are_identified_or_flagged_under_every_seed():
    h = circuit("R0-p(R1,C1)-p(R2,C2)")
    truth = {"R0": 10.0, "R1": 100.0, "C1": 1e-6, "R2": 300.0, "C2": 1e-3}  # tau 1e-4 s and 0.3 s
    data = simulate.spectra(h, truth, times_h=[0.0], symmetric=False, area_cm2=1.0, seed=3, noise=0.01,
                            frequency=simulate.frequency_grid(1e5, 0.05, 6))
    for seed in (0, 1):
        idata = inference.fit(h, data, draws=300, tune=400, chains=4, random_seed=seed)
        median = {p: float(idata["posterior"][p].median()) for p in ("R1", "R2")}
        if int(idata.attrs["converged"]):  # converged means: in the right mode, with R1 the fast arc
            assert median["R1"] == pytest.approx(100.0, rel=0.1) and median["R2"] == pytest.approx(300.0, rel=0.1)
        else:
            from mgbayes import diagnostics
            assert diagnostics.verdict_problems(idata), idata.attrs["diagnostics"]


@pytest.mark.slow
@pytest.mark.skipif(not MPR.is_file(), reason=f"real spectra not found at {MPR}")
def test_real_two_arc_spectrum_reports_the_same_arc_as_R1_under_every_seed():
    spectrum = io.read(MPR).spectra[4]
    h = circuit("R0-p(R1,CPE1)-p(R2,CPE2)-W1")
    r1 = []
    for seed in (0, 1, 5):  # seeds 0 and 5 once put the other arc first
        idata = inference.fit(h, spectrum, draws=300, tune=400, chains=2, random_seed=seed)
        assert idata.attrs["ordered_arcs"] == "tau(R1) < tau(R2)"
        r1.append(float(idata["posterior"]["R1"].median()))
    assert max(r1) / min(r1) < 1.1, r1


def funnel_model():
    """Neal's funnel: NUTS diverges in its neck (at target_accept 0.6 in a fifth of its draws, at any seed tried;
    at 0.9 in none to a few, depending on the seed and the numerical stack)."""
    with pm.Model() as model:
        v = pm.Normal("v", 0.0, 3.0)
        pm.Normal("x", 0.0, pm.math.exp(v / 2), shape=8)
    return model


@pytest.mark.parametrize("cores", [1, 2])
def test_a_run_past_its_divergence_limit_stops_and_leaves_the_seeds_as_a_full_run(cores):
    full_rng, stopped_rng = np.random.default_rng(3), np.random.default_rng(3)
    loose = {"draws": 300, "tune": 200, "chains": 2, "cores": cores, "target_accept": 0.6}
    full = sampler.sample(funnel_model(), rng=full_rng, **loose)
    assert int(full["sample_stats"]["diverging"].sum()) > 2  # the premise: more than the limit below
    assert sampler.sample(funnel_model(), rng=stopped_rng, divergence_limit=2, **loose) is None
    assert full_rng.integers(2**31) == stopped_rng.integers(2**31)  # what is sampled next is the same
    calm = sampler.sample(gaussian_model(), draws=100, tune=100, chains=2, cores=cores, rng=np.random.default_rng(3),
                          divergence_limit=0)
    assert int(calm["sample_stats"]["diverging"].sum()) == 0 and calm["posterior"].sizes["draw"] == 100


@pytest.mark.slow
def test_a_fit_whose_first_run_stops_at_its_divergences_equals_one_whose_first_run_went_to_the_end(monkeypatch):
    from mgbayes import demo, study

    experiment = next(e for e in study.load_study(demo.STUDY).experiments if e.name == "plating_iv")
    hyps, data = study.prepare(experiment, log=lambda s: None)
    h = next(h for h in hyps if h.name == "charge_transfer_onset")
    run_chains = sampler._run_chains
    stops = []

    def watched(*args, **kwargs):
        out = run_chains(*args, **kwargs)
        if out is None:
            stops.append(kwargs["divergence_limit"])
        return out

    options = {"draws": 300, "tune": 300, "chains": 4, "cores": 1, "random_seed": 2026}
    monkeypatch.setattr(sampler, "_run_chains", watched)
    stopped = inference.fit(h, data, **options)
    monkeypatch.setattr(sampler, "_run_chains", lambda *a, **k: run_chains(*a, **{**k, "divergence_limit": None}))
    whole = inference.fit(h, data, **options)
    assert len(stops) == 1 and stopped.attrs["retried"] == whole.attrs["retried"] == 1  # the first run stopped early
    assert stopped.attrs["first_run"] == f"stopped after more than {diagnostics.DIVERGENCES_HANDFUL} divergent transitions"
    assert "divergences" in whole.attrs["first_run"] and "PROBLEMS" in whole.attrs["first_run"]
    for var in whole["posterior"].data_vars:
        np.testing.assert_array_equal(stopped["posterior"][var].values, whole["posterior"][var].values)
