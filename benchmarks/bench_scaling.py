"""Benchmark 3: wall time and ESS per second for 10, 100 and 1000 spectra in a drift series.

Cost should grow no faster than linearly with the number of spectra: the
printed "per spectrum" column is normalised to the 10-spectrum run.

    python benchmarks/bench_scaling.py [--sizes 10 100 1000]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import ocv_series, table, timer  # noqa: E402

import arviz as az  # noqa: E402

from mgbayes import inference  # noqa: E402


def main(sizes=(10, 100, 1000), draws=500, tune=500, chains=2):
    rows, base = [], None
    for n in sizes:
        h, series = ocv_series(n, 71)
        times = {}
        with timer(times, "fit"):
            idata = inference.fit(h, series, draws=draws, tune=tune, chains=chains, random_seed=1)
        post = idata["posterior"].to_dataset()[h.free_parameters() + ["noise_sigma"]]
        ess = min(float(v.min()) for v in az.ess(post).data_vars.values())
        per_spectrum = times["fit"] / n
        base = base or per_spectrum
        rows.append([n, n * 71, f"{times['fit']:.1f}", f"{ess:.0f}", f"{ess / times['fit']:.1f}",
                     f"{per_spectrum / base:.3f}"])
    table(rows, ["spectra", "points", "wall s", "min ESS", "ESS/s", "per spectrum (vs first)"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    main(tuple(parser.parse_args().sizes))
