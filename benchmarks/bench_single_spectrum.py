"""Benchmark 1: one spectrum, R0-p(R1,CPE1): time to a posterior with ESS >= 1000.

mgbayes (PyMC NUTS on the compiled circuit, started at the mode with a dense
Laplace mass matrix) against a NumPyro NUTS model of the same likelihood and
priors (the engine AutoEIS uses, with its default diagonal mass matrix, and
again with ``dense_mass=True``), and impedance.py's least-squares fit for
the point estimate. "cold" is the first run in the process (compiles and
JIT), "warm" a second run with another seed. Needs the ``bench`` extra
(``pip install -e '.[bench]'``: jax, numpyro, impedance).

    python benchmarks/bench_single_spectrum.py
"""

import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import table  # noqa: E402

import arviz as az  # noqa: E402

from mgbayes import fitting, hypotheses, inference, simulate  # noqa: E402

CIRCUIT = "R0-p(R1,CPE1)"
TRUTH = {"R0": 20.0, "R1": 500.0, "CPE1_T": 2e-5, "CPE1_P": 0.88}
DRAWS, TUNE, CHAINS = 1000, 1000, 4


def spectrum():
    h = hypotheses.from_table({"name": CIRCUIT, "experiment": "bench", "physics": "circuit",
                               "circuit": {"electrode": CIRCUIT, "electrodes": 1}})
    data = simulate.spectra(h, TRUTH, times_h=[0.0], symmetric=False, area_cm2=1.0, seed=7)
    return h, data[0]


def min_ess(dataset):
    return float(min(float(v.min()) for v in az.ess(dataset).data_vars.values()))


def run_mgbayes(h, s, seed):
    start = time.perf_counter()
    idata = inference.fit(h, s, draws=DRAWS, tune=TUNE, chains=CHAINS, random_seed=seed)
    wall = time.perf_counter() - start
    post = idata["posterior"].to_dataset()[["R0", "R1", "CPE1_T", "CPE1_P", "noise_sigma"]]
    return wall, min_ess(post), {k: float(post[k].median()) for k in TRUTH}


def run_numpyro(h, s, seed, dense_mass=False):
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    jax.config.update("jax_enable_x64", True)
    priors = h.prior_table(frequency=s.frequency, impedance=s.impedance_area)
    omega = jnp.asarray(2 * np.pi * s.frequency)
    y = jnp.asarray(np.stack([s.impedance_area.real, s.impedance_area.imag], axis=-1))

    def lognormal(name):
        p = priors[name].args
        return numpyro.sample(name, dist.LogNormal(np.log(p["median"]), p["sd_log"]))

    def model():
        R0, R1, T = lognormal("R0"), lognormal("R1"), lognormal("CPE1_T")
        P = numpyro.sample("CPE1_P", dist.Beta(priors["CPE1_P"].args["alpha"], priors["CPE1_P"].args["beta"]))
        sigma = numpyro.sample("noise_sigma", dist.HalfNormal(priors["noise_sigma"].args["sigma"]))
        z = R0 + 1.0 / (1.0 / R1 + T * (1j * omega) ** P)
        mu = jnp.stack([z.real, z.imag], axis=-1)
        numpyro.sample("Z", dist.Normal(mu, sigma * jnp.abs(z)[:, None]), obs=y)

    start = time.perf_counter()
    mcmc = MCMC(NUTS(model, target_accept_prob=0.9, dense_mass=dense_mass), num_warmup=TUNE, num_samples=DRAWS, num_chains=CHAINS,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(seed))
    samples = mcmc.get_samples(group_by_chain=True)
    wall = time.perf_counter() - start
    post = az.from_dict({"posterior": {k: np.asarray(v) for k, v in samples.items()}})["posterior"].to_dataset()
    return wall, min_ess(post), {k: float(np.median(samples[k])) for k in TRUTH}


def run_impedance_py(s):
    from impedance.models.circuits import CustomCircuit

    guess = [TRUTH[k] * 1.5 for k in ("R0", "R1", "CPE1_T")] + [0.8]
    start = time.perf_counter()
    c = CustomCircuit(CIRCUIT, initial_guess=guess)
    c.fit(s.frequency, s.impedance_area, weight_by_modulus=True)
    return time.perf_counter() - start, dict(zip(["R0", "R1", "CPE1_T", "CPE1_P"], c.parameters_))


def main():
    os.environ["MGBAYES_CACHE_DIR"] = tempfile.mkdtemp()  # cold: no compiled density on disk yet
    h, s = spectrum()
    rows, results = [], {}
    engines = (("mgbayes (PyMC NUTS)", run_mgbayes), ("NumPyro NUTS", run_numpyro),
               ("NumPyro NUTS, dense mass", lambda h, s, seed: run_numpyro(h, s, seed, dense_mass=True)))
    for label, run in engines:
        for phase, seed in (("cold", 1), ("warm", 2)):
            wall, ess, medians = run(h, s, seed)
            results[(label, phase)] = (wall, ess, medians)
            rows.append([label, phase, f"{wall:.1f}", f"{ess:.0f}", f"{ess / wall:.0f}"])
    table(rows, ["engine", "run", "wall s", "min ESS", "ESS/s"])
    for phase in ("cold", "warm"):
        ours = results[("mgbayes (PyMC NUTS)", phase)]
        for other in ("NumPyro NUTS", "NumPyro NUTS, dense mass"):
            theirs = results[(other, phase)]
            print(f"{phase}: ESS/s ratio mgbayes / {other} = {(ours[1] / ours[0]) / (theirs[1] / theirs[0]):.2f}")
    t_ipy, p_ipy = run_impedance_py(s)
    start = time.perf_counter()
    p_ours, _ = fitting.least_squares(CIRCUIT, s.frequency, s.impedance_area)
    t_ours = time.perf_counter() - start
    print(f"least squares: impedance.py {t_ipy * 1e3:.1f} ms, mgbayes.fitting {t_ours * 1e3:.1f} ms "
          f"(ratio {t_ours / t_ipy:.2f})")
    for k in TRUTH:
        rel = abs(p_ours[k] / p_ipy[k] - 1)
        post = results[("mgbayes (PyMC NUTS)", "warm")][2][k]
        print(f"  {k:8s} impedance.py {p_ipy[k]:.6g}  mgbayes CNLS {p_ours[k]:.6g} (rel. diff {rel:.1e}"
              f"{', OK' if rel < 1e-3 else ', > 0.1 %!'})  posterior median {post:.6g}")


if __name__ == "__main__":
    main()
