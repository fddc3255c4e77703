"""The three-hypothesis OCV comparison on the 40-spectrum demo series: cold, warm, and baselines.

Runs in one process:

* ``mgbayes cold``: ``inference.fit`` of charge_transfer, film and mixed
  plus ``compare.compare``, with an empty compiled-density cache;
* ``mgbayes warm``: the same again (new seed), the cache now filled;
* ``PyMC defaults``: the same models sampled by plain ``pm.sample``
  (``jitter+adapt_diag``, PyMC compiles as usual), then the same
  post-processing and comparison: the baseline for the ratios;
* any backend named with ``--samplers`` (e.g. ``nutpie``), warm.

Prints wall time per hypothesis, the smallest bulk ESS of the sampled
parameters, ESS per second, mean leapfrog steps per draw, and ratios to
the baseline.

    python benchmarks/bench_ocv_comparison.py [--draws 1000 --tune 1000 --chains 4] [--samplers nutpie]
"""

import argparse
import os
import sys
import tempfile
import time
import warnings

sys.path.insert(0, os.path.dirname(__file__))
from common import table  # noqa: E402

import arviz as az  # noqa: E402
import numpy as np  # noqa: E402
import pymc as pm  # noqa: E402

from mgbayes import compare, hypotheses, inference, io  # noqa: E402
from mgbayes.demo import AREA_CM2, DEMO_DIR  # noqa: E402


def pymc_defaults(h, series, *, draws, tune, chains, random_seed, **_):
    """Plain ``pm.sample`` on the same model, then mgbayes's post-processing (the baseline)."""
    model, obs = inference.build_model(h, series)
    with model, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = pm.sample(draws=draws, tune=tune, chains=chains, cores=2, random_seed=random_seed, progressbar=False,
                        nuts_sampler="pymc", compute_convergence_checks=False)
    return inference.finish(h, obs, raw, random_seed=random_seed)


def min_ess(idata, h):
    post = idata["posterior"].to_dataset()[h.free_parameters() + ["noise_sigma"]]
    return min(float(v.min()) for v in az.ess(post).data_vars.values())


def run(series, hyps, fit, seed, **sampler):
    rows, results, total = {}, {}, 0.0
    for h in hyps:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results[h.name] = fit(h, series, random_seed=seed, **sampler)
        wall = time.perf_counter() - start
        total += wall
        ess = min_ess(results[h.name], h)
        steps = float(results[h.name]["sample_stats"]["n_steps"].mean()) if "n_steps" in results[h.name]["sample_stats"] else np.nan
        rows[h.name] = (wall, ess, steps)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = compare.compare(results)
    rows["compare"] = time.perf_counter() - start
    rows["total"] = total + rows["compare"]
    return rows, c


def main(draws, tune, chains, samplers):
    series = io.read(DEMO_DIR / "ocv_drift_MgMg.mpt", area_cm2=AREA_CM2, symmetric=True)
    hyps = hypotheses.load_folder(hypotheses.MODELS_DIR / "ocv_drift")
    settings = {"draws": draws, "tune": tune, "chains": chains}
    runs = {}
    with tempfile.TemporaryDirectory() as cache_dir:
        os.environ["MGBAYES_CACHE_DIR"] = cache_dir  # empty: the first run compiles, the second loads
        runs["mgbayes cold"], _ = run(series, hyps, inference.fit, 1, **settings)
        runs["mgbayes warm"], c = run(series, hyps, inference.fit, 2, **settings)
        for name in samplers:
            runs[f"{name} warm"], _ = run(series, hyps, inference.fit, 2, nuts_sampler=name, **settings)
    runs["PyMC defaults"], _ = run(series, hyps, pymc_defaults, 2, **settings)
    base = runs["PyMC defaults"]
    rows = []
    for label, r in runs.items():
        cells = [label, f"{r['total']:.1f}", f"{base['total'] / r['total']:.2f}"]
        for h in hyps:
            wall, ess, steps = r[h.name]
            speedup = (ess / wall) / (base[h.name][1] / base[h.name][0])
            cells.append(f"{wall:.1f} s, ESS {ess:.0f}, {ess / wall:.0f}/s (x{speedup:.2f}), {steps:.1f} steps")
        cells.append(f"{r['compare']:.1f}")
        rows.append(cells)
    table(rows, ["run", "total s", "speed-up vs PyMC defaults"] + [h.name for h in hyps] + ["compare s"])
    print(f"{len(series)} spectra x {series.frequency.size} frequencies, {chains} chains x {draws} draws "
          f"({tune} tuning); speed-up = baseline wall / wall; (xN) = ESS/s ratio to the baseline")
    print(c)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--samplers", nargs="*", default=[], help="extra NUTS backends to time (nutpie, numpyro, blackjax)")
    a = p.parse_args()
    main(a.draws, a.tune, a.chains, a.samplers)
