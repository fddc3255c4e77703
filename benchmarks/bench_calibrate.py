"""Benchmark: calibrating the demo's OCV experiment (3 generators × 3 hypotheses × N replicates).

Every replicate fit is 2 chains × 500 draws (500 tuning) on the 40-spectrum
demo design, as in the issue's target (180 fits in under 15 minutes on 2
cores). The baseline is one ordinary fit (``inference.fit``, what ``mgbayes
run`` does per hypothesis) with the same settings, chains in parallel; the
three baseline fits also give the generators' posteriors. The calibration
then runs on the process pool with 2 workers and with 1 (each worker fits
its chains one after another), from an empty results folder, with the
compiled densities cached on disk as after a first run.

    python benchmarks/bench_calibrate.py                 # 20 replicates per generator: 180 fits per pool size
    python benchmarks/bench_calibrate.py --replicates 2  # a reduced run (18 fits per pool size)
"""

import argparse
import os
import sys
import tempfile
import time
import warnings

sys.path.insert(0, os.path.dirname(__file__))
from common import table  # noqa: E402

from mgbayes import calibrate, inference, study  # noqa: E402
from mgbayes.demo import STUDY  # noqa: E402

SETTINGS = {"draws": 500, "tune": 500, "chains": 2, "target_accept": 0.9}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 1])
    args = parser.parse_args()
    experiment = calibrate.select(study.load_study(STUDY), "ocv_drift")[0]
    hyps, obs, priors = calibrate.prepare(experiment)
    data = study.load_data(experiment, hyps[0].kind)

    fits, baseline = {}, {}
    for h in hyps:  # one ordinary fit per hypothesis: the baseline, and the generators' posteriors
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits[h.name] = inference.fit(h, data, draws=SETTINGS["draws"], tune=SETTINGS["tune"],
                                         chains=SETTINGS["chains"], random_seed=1)
        baseline[h.name] = time.perf_counter() - start
    ordinary = sum(baseline.values()) / len(baseline)
    print("ordinary fits (chains in parallel): " + ", ".join(f"{k} {v:.1f} s" for k, v in baseline.items()), flush=True)

    print(f"one ordinary fit: {ordinary:.1f} s wall (2 chains in parallel, 2 x 500 draws)", flush=True)
    header = ["workers", "fits", "wall s", "s per fit", "core-s per fit", "core-s per fit / ordinary fit wall",
              "180 fits, min", "verdicts"]
    rows = []
    for workers in args.workers:
        folder = tempfile.mkdtemp(prefix="bench_calibrate_")
        tasks = calibrate.tasks_for(experiment, hyps, obs, priors, replicates=args.replicates, source="posterior",
                                    sampler=SETTINGS, folder=folder, fits=fits, seed=experiment.sampler["seed"])
        n_fits = len(tasks) * len(hyps)
        start = time.perf_counter()
        done = calibrate.run_tasks(tasks, scheduler="processes", workers=workers, log=lambda _: None)
        wall = time.perf_counter() - start
        verdicts = {v: sum(r["verdict"] == v for r in done) for v in calibrate.VERDICTS}
        per_fit = wall / n_fits
        rows.append([workers, n_fits, f"{wall:.0f}", f"{per_fit:.1f}", f"{per_fit * workers:.1f}",
                     f"{per_fit * workers / ordinary:.2f}", f"{180 * per_fit / 60:.1f}",
                     " ".join(f"{k} {v}" for k, v in verdicts.items())])
        table(rows[-1:], header)  # each pool size as soon as it is measured
        sys.stdout.flush()
    table(rows, header)


if __name__ == "__main__":
    main()
