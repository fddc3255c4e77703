"""Benchmark 1: mgbayes against NumPyro NUTS, end to end and at steady state.

Two cases with the same likelihood and priors in both engines:

- ``spectrum``: one R0-p(R1,CPE1) spectrum (the engine AutoEIS uses, on the
  model AutoEIS fits);
- ``drift``: the OCV charge-transfer drift model on the 40-spectrum demo
  design (71 frequencies), R_ct(t) = R_ct_0 (1 + R_ct_rate t).

Per engine and case, two kinds of figure:

- *end to end*: a fresh fit as a user makes it. mgbayes ``inference.fit``
  ("cold": empty compiled-density cache; "warm": a second fit with another
  seed, density from the cache); NumPyro a new ``MCMC`` with a new model
  closure, so JAX traces and compiles again;
- *steady state*: what is left once everything is compiled. NumPyro's
  ``MCMC`` object reused with another key (JIT cached), with the default
  diagonal and with ``dense_mass=True``; mgbayes the warm fit again.

For each run "sampling s" is the time spent in NUTS alone (tuning and
draws: PyMC's ``sampling_time``; NumPyro's reused-object run) beside the
wall time; ESS/s divides the minimum bulk ESS over the parameters by the
wall time. 4 chains × 1000 draws (1000 tuning); NumPyro's chains are
``vectorized``. The least-squares point estimate is compared with
impedance.py's. Needs the ``bench`` extra (jax, numpyro, impedance).

    python benchmarks/bench_single_spectrum.py [--cases spectrum drift]
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import ocv_series, table  # noqa: E402

import arviz as az  # noqa: E402

from mgbayes import fitting, hypotheses, inference, simulate  # noqa: E402
from mgbayes.observations import observe  # noqa: E402

CIRCUIT = "R0-p(R1,CPE1)"
TRUTH = {"R0": 20.0, "R1": 500.0, "CPE1_T": 2e-5, "CPE1_P": 0.88}
DRAWS, TUNE, CHAINS = 1000, 1000, 4


def spectrum():
    h = hypotheses.from_table({"name": CIRCUIT, "family": "bench", "physics": "circuit",
                               "circuit": {"electrode": CIRCUIT, "electrodes": 1}})
    data = simulate.spectra(h, TRUTH, times_h=[0.0], symmetric=False, area_cm2=1.0, seed=7)
    return h, data[0]


def min_ess(dataset):
    return float(min(float(v.min()) for v in az.ess(dataset).data_vars.values()))


def run_mgbayes(h, data, seed):
    """``(wall, sampling, min ESS, medians)`` of one ``inference.fit``."""
    start = time.perf_counter()
    idata = inference.fit(h, data, draws=DRAWS, tune=TUNE, chains=CHAINS, random_seed=seed)
    wall = time.perf_counter() - start
    names = h.free_parameters() + ["noise_sigma"]
    post = idata["posterior"].to_dataset()[names]
    sampling = float(idata["sample_stats"].attrs.get("sampling_time", np.nan))
    return wall, sampling, min_ess(post), {k: float(post[k].median()) for k in names}


# -- NumPyro models of the same likelihoods and priors ----------------------------------------------

def _numpyro_prior(name, prior):
    import numpyro
    import numpyro.distributions as dist

    a = prior.args
    table = {"lognormal": lambda: dist.LogNormal(np.log(a["median"]), a["sd_log"]),
             "beta": lambda: dist.Beta(a["alpha"], a["beta"]),
             "halfnormal": lambda: dist.HalfNormal(a["sigma"]),
             "normal": lambda: dist.Normal(a["mu"], a["sigma"]),
             "uniform": lambda: dist.Uniform(a["lower"], a["upper"])}
    return numpyro.sample(name, table[prior.dist]())


def numpyro_model(case, h, data):
    """A NumPyro model closure of ``case`` with the priors mgbayes uses on ``data``."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    obs = observe(data)
    priors = inference.priors_for(h, obs)
    omega = jnp.asarray(2 * np.pi * obs.frequency)
    y = jnp.asarray(obs.values)
    t = jnp.asarray(obs.inputs["t"])[:, None]

    def cpe_arc(R, T, P):
        return 1.0 / (1.0 / R + T * (1j * omega) ** P)

    def model():
        p = {name: _numpyro_prior(name, prior) for name, prior in priors.items()}
        if case == "spectrum":
            z = p["R0"] + cpe_arc(p["R1"], p["CPE1_T"], p["CPE1_P"])
            z = z[None, :]
        else:  # symmetric cell: R_el + 2 x electrode, R_ct drifting linearly
            R_ct = p["R_ct_0"] * (1.0 + p["R_ct_rate"] * t)
            z = p["R_el"] + 2.0 * cpe_arc(R_ct, p["CPE_dl_T"], p["CPE_dl_P"])
        mu = jnp.stack([z.real, z.imag], axis=-1)
        numpyro.sample("Z", dist.Normal(mu, p["noise_sigma"] * jnp.abs(z)[..., None]), obs=y)

    return model, list(priors)


def run_numpyro(case, h, data, seed, *, dense_mass=False, mcmc=None):
    """``(wall, sampling, min ESS, medians, mcmc)``; a given ``mcmc`` is reused (steady state)."""
    import jax
    from numpyro.infer import MCMC, NUTS

    jax.config.update("jax_enable_x64", True)
    start = time.perf_counter()
    if mcmc is None:
        model, _ = numpyro_model(case, h, data)
        mcmc = MCMC(NUTS(model, target_accept_prob=0.9, dense_mass=dense_mass), num_warmup=TUNE, num_samples=DRAWS,
                    num_chains=CHAINS, chain_method="vectorized", progress_bar=False)
    setup = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(seed))
    samples = mcmc.get_samples(group_by_chain=True)
    jax.block_until_ready(samples)
    end = time.perf_counter()
    post = az.from_dict({"posterior": {k: np.asarray(v) for k, v in samples.items()}})["posterior"].to_dataset()
    return end - start, end - setup, min_ess(post), {k: float(np.median(samples[k])) for k in samples}, mcmc


def run_impedance_py(s):
    from impedance.models.circuits import CustomCircuit

    guess = [TRUTH[k] * 1.5 for k in ("R0", "R1", "CPE1_T")] + [0.8]
    start = time.perf_counter()
    c = CustomCircuit(CIRCUIT, initial_guess=guess)
    c.fit(s.frequency, s.impedance_area, weight_by_modulus=True)
    return time.perf_counter() - start, dict(zip(["R0", "R1", "CPE1_T", "CPE1_P"], c.parameters_))


def bench_case(case):
    h, data = spectrum() if case == "spectrum" else ocv_series()
    rows, results = [], {}

    def record(engine, phase, wall, sampling, ess):
        results[(engine, phase)] = (wall, ess)
        rows.append([engine, phase, f"{wall:.1f}", f"{sampling:.1f}", f"{ess:.0f}", f"{ess / wall:.0f}",
                     f"{ess / sampling:.0f}"])

    for phase, seed in (("cold (end to end)", 1), ("warm (end to end)", 2), ("steady state", 3)):
        wall, sampling, ess, _ = run_mgbayes(h, data, seed)
        record("mgbayes (PyMC NUTS)", phase, wall, sampling, ess)
    for label, dense in (("NumPyro NUTS", False), ("NumPyro NUTS, dense mass", True)):
        wall, sampling, ess, _, mcmc = run_numpyro(case, h, data, 1, dense_mass=dense)
        record(label, "cold (end to end)", wall, sampling, ess)
        wall, sampling, ess, _, _ = run_numpyro(case, h, data, 2, dense_mass=dense)  # new MCMC, new closure
        record(label, "warm (end to end)", wall, sampling, ess)
        wall, sampling, ess, _, _ = run_numpyro(case, h, data, 3, mcmc=mcmc)  # the same MCMC: JIT cached
        record(label, "steady state", wall, sampling, ess)
    print(f"\n== {case}: {'one R0-p(R1,CPE1) spectrum' if case == 'spectrum' else 'OCV drift, 40 spectra x 71 frequencies'}")
    table(rows, ["engine", "run", "wall s", "sampling s", "min ESS", "ESS/s (wall)", "ESS/s (sampling)"])
    for phase in ("warm (end to end)", "steady state"):
        ours = results[("mgbayes (PyMC NUTS)", phase)]
        for other in ("NumPyro NUTS", "NumPyro NUTS, dense mass"):
            theirs = results[(other, phase)]
            print(f"{case}, {phase}: ESS/s ratio mgbayes / {other} = "
                  f"{(ours[1] / ours[0]) / (theirs[1] / theirs[0]):.2f}")
    return h, data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["spectrum", "drift"], choices=["spectrum", "drift"])
    args = parser.parse_args()
    os.environ["MGBAYES_CACHE_DIR"] = tempfile.mkdtemp()  # cold: no compiled density on disk yet
    for case in args.cases:
        bench_case(case)
    if "spectrum" not in args.cases:
        return
    _, s = spectrum()
    t_ipy, p_ipy = run_impedance_py(s)
    start = time.perf_counter()
    p_ours, _ = fitting.least_squares(CIRCUIT, s.frequency, s.impedance_area)
    t_ours = time.perf_counter() - start
    print(f"least squares: impedance.py {t_ipy * 1e3:.1f} ms, mgbayes.fitting {t_ours * 1e3:.1f} ms "
          f"(ratio {t_ours / t_ipy:.2f})")
    for k in TRUTH:
        rel = abs(p_ours[k] / p_ipy[k] - 1)
        print(f"  {k:8s} impedance.py {p_ipy[k]:.6g}  mgbayes CNLS {p_ours[k]:.6g} (rel. diff {rel:.1e}"
              f"{', OK' if rel < 1e-3 else ', > 0.1 %!'})")


if __name__ == "__main__":
    main()
