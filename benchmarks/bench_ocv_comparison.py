"""The three-hypothesis OCV comparison on the 40-spectrum demo series, cold and warm.

Cold: first fits in this process (PyTensor/Numba caches as they are on
disk); warm: the same again with a different seed. Prints wall times, the
share of each hypothesis, and the minimum ESS reached.

    python benchmarks/bench_ocv_comparison.py [--draws 1000 --tune 1000 --chains 4]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import table  # noqa: E402

from mgbayes import compare, hypotheses, inference, io  # noqa: E402
from mgbayes.demo import AREA_CM2, DEMO_DIR  # noqa: E402


def run(series, hyps, seed, **sampler):
    times, results = {}, {}
    for h in hyps:
        start = time.perf_counter()
        results[h.name] = inference.fit(h, series, random_seed=seed, **sampler)
        times[h.name] = time.perf_counter() - start
    start = time.perf_counter()
    c = compare.compare(results)
    times["compare"] = time.perf_counter() - start
    return times, results, c


def main(draws, tune, chains):
    series = io.read(DEMO_DIR / "ocv_drift_MgMg.mpt", area_cm2=AREA_CM2, symmetric=True)
    hyps = hypotheses.load_folder(hypotheses.MODELS_DIR / "ocv_drift")
    rows = []
    for phase, seed in (("cold", 1), ("warm", 2)):
        times, results, c = run(series, hyps, seed, draws=draws, tune=tune, chains=chains)
        total = sum(times.values())
        rows.append([phase, f"{total:.1f}"] + [f"{times[h.name]:.1f}" for h in hyps] + [f"{times['compare']:.1f}"])
    table(rows, ["run", "total s"] + [h.name for h in hyps] + ["compare"])
    print(f"{len(series)} spectra x {series.frequency.size} frequencies, {chains} chains x {draws} draws "
          f"({tune} tuning); warm/cold = {float(rows[1][1]) / float(rows[0][1]):.2f}")
    print(c)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    a = p.parse_args()
    main(a.draws, a.tune, a.chains)
