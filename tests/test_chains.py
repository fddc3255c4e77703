"""Chains advanced together, look by look: PyMC's draws, the same in any process, a stop keeps a prefix."""

import multiprocessing
from pathlib import Path

import numpy as np
import pymc as pm
import pytest
from pymc.step_methods.hmc.quadpotential import QuadPotentialDiagAdapt

from mgbayes import chains, diagnostics, hypotheses, inference, sampler, simulate


def normal_model():
    """No transformed variables: a start is the same point for PyMC and for the chains here."""
    with pm.Model() as model:
        a = pm.Normal("a", 0.0, 1.0, shape=3)
        pm.Normal("y", a.sum(), 0.5, observed=[0.3, 0.5, -0.1])
    return model


def nuts(model):
    with model:
        return pm.NUTS(potential=QuadPotentialDiagAdapt(3, np.zeros(3), np.ones(3), 10), target_accept=0.9)


STARTS = [{"a": np.array([0.1, -0.2, 0.3])}, {"a": np.array([-0.5, 0.4, 0.0])}]


@pytest.mark.parametrize("cores", [1, 2])
def test_the_chains_draw_exactly_what_pm_sample_draws_from_the_same_starts_and_seed(cores):
    model = normal_model()
    ours = sampler._run_chains(model, [nuts(model), nuts(model)], STARTS, seed=5, draws=60, tune=40, cores=cores,
                               progressbar=False, divergence_limit=None, enough=None)
    with model:
        theirs = pm.sample(step=nuts(model), initvals=STARTS, draws=60, tune=40, chains=2, cores=1, random_seed=5,
                           compute_convergence_checks=False, progressbar=False)
    np.testing.assert_array_equal(ours["posterior"]["a"].values, theirs["posterior"]["a"].values)
    for stat in ("lp", "step_size", "tree_depth", "diverging"):
        np.testing.assert_array_equal(ours["sample_stats"][stat].values, theirs["sample_stats"][stat].values)


def test_the_same_draws_in_this_process_and_on_workers_and_a_stopped_run_keeps_the_first_draws():
    looked = []

    def enough(idata):
        looked.append(idata["posterior"].sizes["draw"])
        return looked[-1] >= 120

    options = {"draws": 200, "tune": 100, "chains": 4}
    here = sampler.sample(normal_model(), cores=1, rng=np.random.default_rng(7), **options)
    there = sampler.sample(normal_model(), cores=2, rng=np.random.default_rng(7), **options)
    stopped = sampler.sample(normal_model(), cores=2, rng=np.random.default_rng(7), enough=enough, **options)
    np.testing.assert_array_equal(here["posterior"]["a"].values, there["posterior"]["a"].values)
    assert looked == [40, 60, 80, 100, 120]  # sampler.looks(200): from 20 %, every 10 %
    assert stopped["posterior"].sizes["draw"] == 120
    np.testing.assert_array_equal(stopped["posterior"]["a"].values, here["posterior"]["a"].values[:, :120])
    np.testing.assert_array_equal(stopped["sample_stats"]["lp"].values, here["sample_stats"]["lp"].values[:, :120])
    assert stopped.attrs["mass_matrix"] == here.attrs["mass_matrix"] and "mode_gap" in stopped.attrs
    assert not multiprocessing.active_children()  # the chain workers ended with the run


def test_looks_start_at_a_fifth_of_the_draws_then_every_tenth_and_end_at_the_last():
    assert sampler.looks(1000) == [200, 300, 400, 500, 600, 700, 800, 900, 1000]
    assert sampler.looks(300) == [60, 90, 120, 150, 180, 210, 240, 270, 300]
    assert sampler.looks(5) == [1, 2, 3, 4, 5]
    assert sampler.looks(1000, early=False) == [1000]
    assert sampler.looks(300, draws_max=450) == [60, 90, 120, 150, 180, 210, 240, 270, 300, 330, 360, 390, 420, 450]


@pytest.mark.parametrize("helps", [True, False])
def test_a_run_not_converged_at_its_draws_goes_on_only_while_more_draws_help(helps):
    looked = []

    def enough(idata):
        looked.append(idata["posterior"].sizes["draw"])
        return looked[-1] >= 260

    options = {"draws": 200, "tune": 100, "chains": 2, "cores": 1}
    longer = sampler.sample(normal_model(), rng=np.random.default_rng(7), **{**options, "draws": 400})
    went_on = sampler.sample(normal_model(), rng=np.random.default_rng(7), enough=enough, draws_max=400,
                             more=lambda idata: helps, **options)
    n = went_on["posterior"].sizes["draw"]
    assert n == (260 if helps else 200) and looked[-1] == n  # looked at as often: 20 draws apart
    np.testing.assert_array_equal(went_on["posterior"]["a"].values, longer["posterior"]["a"].values[:, :n])


class Broken:
    """A step method whose third step fails, as a density that raises would."""

    def setup_chain(self, rng, tune, draws):
        self.n = 0

    def reset_tuning(self):
        pass

    def stop_tuning(self):
        pass

    def step(self, point):
        self.n += 1
        if self.n == 3:
            raise ValueError("the density failed at step 3")
        return point, [{}]


@pytest.mark.parametrize("runner", [chains.Chains, chains.ChainProcesses])
def test_an_error_in_a_chain_is_raised_where_the_chains_are_driven(runner):
    options = {"tune": 0, "total": 10} | ({"processes": 2} if runner is chains.ChainProcesses else {})
    run = runner([Broken(), Broken()], [{"a": 0.0}, {"a": 1.0}], [np.random.default_rng(0)] * 2, **options)
    try:
        assert [len(r) for r in run.advance(2)] == [2, 2]
        with pytest.raises(ValueError, match="failed at step 3"):
            run.advance(2)
    finally:
        run.close()
    assert not multiprocessing.active_children()


@pytest.mark.parametrize("cores", [1, 2])
def test_an_interrupted_run_raises_and_leaves_no_chain_process(monkeypatch, cores):
    runner = chains.Chains if cores == 1 else chains.ChainProcesses
    advance = runner.advance
    calls = []

    def interrupted(self, n):  # Ctrl-C during the second stretch
        calls.append(n)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return advance(self, n)

    monkeypatch.setattr(runner, "advance", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sampler.sample(normal_model(), draws=100, tune=50, chains=2, cores=cores, rng=np.random.default_rng(3),
                       divergence_limit=10)
    assert not multiprocessing.active_children()


def test_a_fit_until_converged_stops_early_and_keeps_the_first_draws_of_a_full_fit():
    h = hypotheses.load(Path(__file__).parent / "data" / "single_arc.toml")
    truth = {"R_el": 30.0, "R_ct_0": 2e4, "R_ct_rate": 0.45, "CPE_dl_T": 4e-5, "CPE_dl_P": 0.9}
    data = simulate.spectra(h, truth, times_h=np.linspace(0, 20, 6), frequency=simulate.frequency_grid(1e5, 0.02, 6),
                            area_cm2=1.13, seed=3, noise=0.01)
    options = {"draws": 1000, "tune": 500, "chains": 4, "cores": 1, "random_seed": 4}
    early = inference.fit(h, data, **options)
    full = inference.fit(h, data, until_converged=False, **options)
    n = early["posterior"].sizes["draw"]
    assert n < 1000 and n in sampler.looks(1000) and int(early.attrs["converged"]) == 1, early.attrs["diagnostics"]
    assert full["posterior"].sizes["draw"] == 1000
    for name in ("R_el", "R_ct_0", "CPE_dl_P"):
        np.testing.assert_array_equal(early["posterior"][name].values, full["posterior"][name].values[:, :n])
    # the stop is the first look with enough draws: at the look before, a check failed or PSIS-LOO had too few
    shorter = sampler.looks(1000)[sampler.looks(1000).index(n) - 1] if n > 200 else None
    if shorter:
        prefix = full.copy()
        prefix["posterior"] = full["posterior"].to_dataset().isel(draw=slice(0, shorter))
        prefix["sample_stats"] = full["sample_stats"].to_dataset().isel(draw=slice(0, shorter))
        report = diagnostics.check(prefix)
        assert not report.enough_draws(4 * 1000, draws_min=diagnostics.LOO_DRAWS_MIN)
    assert diagnostics.check(early).draws >= diagnostics.LOO_DRAWS_MIN
