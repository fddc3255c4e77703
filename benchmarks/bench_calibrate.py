"""Benchmark: calibrating the demo's OCV experiment (3 generators × 3 hypotheses × N replicates).

Every replicate fit is 2 chains × 500 draws (500 tuning) on the 40-spectrum
demo design, as in the issue's target (180 fits in under 15 minutes on 2
cores). The baseline is one ordinary fit per hypothesis (``inference.fit``,
what ``mgbayes run`` does per hypothesis, without writing its netCDF) with
the same settings, run in this process with its chains one after another
so that its processor time is the whole cost of the fit; the three baseline
fits also give the generators' posteriors. The calibration then runs on the
process pool (each worker fits its chains one after another), from an empty
results folder, with the compiled densities cached on disk as after a first
run.

Figures, and what each includes:

- *ordinary fit, CPU s*: build the model, load the compiled density from the
  disk cache (or compile it, on a machine where no fit ran before), mode search,
  NUTS (tuning and draws), post-processing (log-likelihood, predictive,
  prior, derived quantities, diagnostics); no file written;
- *replicate fit, CPU s*: the same steps in a worker, with the density
  compiled once per worker and hypothesis and the simulated data swapped in
  (no compile per replicate), the mode search started where the study fit
  ended, plus PSIS-LOO and a small pickled summary (the resume file);
- *wall s*: the whole pool run, worker start-up and the first compile in
  each worker included.

Processor time per fit is the load-robust figure (a machine shared with other
jobs stretches wall time, not CPU time, much); the 180-fit extrapolation
divides 180 × CPU s per fit by the pool's workers and assumes each worker
gets a whole core.

    python benchmarks/bench_calibrate.py                 # 20 replicates per generator: 180 fits per pool size
    python benchmarks/bench_calibrate.py --replicates 3  # a reduced run (27 fits per pool size)
    python benchmarks/bench_calibrate.py --in-process charge_transfer --replicates 3  # per-fit cost only
"""

import argparse
import os
import sys
import tempfile
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import table  # noqa: E402

from mgbayes import calibrate, inference, study  # noqa: E402
from mgbayes.demo import STUDY  # noqa: E402

SETTINGS = {"draws": 500, "tune": 500, "chains": 2, "target_accept": 0.9}


def ordinary_fit(h, data, seed):
    """``(idata, wall s, CPU s)`` of one ``inference.fit`` with its chains in this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = inference.fit(h, data, draws=SETTINGS["draws"], tune=SETTINGS["tune"], chains=SETTINGS["chains"],
                              cores=1, random_seed=seed)
    return idata, time.perf_counter() - wall, time.process_time() - cpu


def in_process(experiment, hyps, obs, priors, data, names, replicates):
    """Per hypothesis: one ordinary fit, then ``replicates`` replicate fits in the same process (CPU s each).

    The replicate data are simulated from that hypothesis's own posterior;
    the first replicate fit compiles the mutable model, the others reuse it.
    """
    rows = []
    for h in hyps:
        if h.name not in names:
            continue
        idata, wall, cpu = ordinary_fit(h, data, seed=1)
        start = calibrate.warm_start(idata)
        draws = calibrate.posterior_draws(idata, priors[h.name], replicates, np.random.default_rng(0))
        times = []
        for k, parameters in enumerate(draws):
            values = calibrate.simulate(h, obs, parameters, priors[h.name], np.random.default_rng(k))
            began = time.process_time()
            fit = calibrate.fit_replicate(h, obs, priors[h.name], values, sampler=SETTINGS, seed=k, start=start)
            calibrate.summarise_fit(fit, experiment.unit)
            times.append(time.process_time() - began)
        steady = np.mean(times[1:]) if len(times) > 1 else times[0]
        rows.append([h.name, f"{wall:.1f}", f"{cpu:.1f}", " ".join(f"{t:.1f}" for t in times), f"{steady / cpu:.2f}"])
        print(rows[-1], flush=True)
    table(rows, ["hypothesis", "ordinary fit wall s", "ordinary fit CPU s", "replicate fits CPU s (first compiles)",
                 "replicate / ordinary CPU (after the first)"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--in-process", nargs="+", default=None, metavar="HYPOTHESIS",
                        help="only the per-fit cost: ordinary fit and --replicates replicate fits of these "
                             "hypotheses, one after another in this process")
    args = parser.parse_args()
    experiment = calibrate.select(study.load_study(STUDY), "ocv_drift")[0]
    hyps, obs, priors = calibrate.prepare(experiment)
    data = study.load_data(experiment, hyps[0].kind)
    if args.in_process:
        return in_process(experiment, hyps, obs, priors, data, args.in_process, args.replicates)

    fits, baseline = {}, []
    for h in hyps:
        fits[h.name], wall, cpu = ordinary_fit(h, data, seed=1)
        baseline.append([h.name, f"{wall:.1f}", f"{cpu:.1f}"])
        print(f"ordinary fit {h.name}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
    ordinary_cpu = np.mean([float(r[2]) for r in baseline])
    table(baseline, ["hypothesis", "ordinary fit wall s", "ordinary fit CPU s"])

    header = ["workers", "fits", "wall s", "replicate fit CPU s (mean)", "/ ordinary fit CPU",
              "180 fits on 2 cores, min (from CPU)", "verdicts"]
    rows = []
    for workers in args.workers:
        folder = tempfile.mkdtemp(prefix="bench_calibrate_")
        tasks = calibrate.tasks_for(experiment, hyps, obs, priors, replicates=args.replicates, source="posterior",
                                    sampler=SETTINGS, folder=folder, fits=fits, seed=experiment.sampler["seed"])
        n_fits = len(tasks) * len(hyps)
        start = time.perf_counter()
        done = calibrate.run_tasks(tasks, scheduler="processes", workers=workers, log=lambda _: None)
        wall = time.perf_counter() - start
        cpu = np.mean([s for r in done for s in r["fit_cpu_seconds"].values()])
        by_hypothesis = {h.name: np.mean([r["fit_cpu_seconds"][h.name] for r in done]) for h in hyps}
        verdicts = {v: sum(r["verdict"] == v for r in done) for v in calibrate.VERDICTS}
        rows.append([workers, n_fits, f"{wall:.0f}", f"{cpu:.1f}", f"{cpu / ordinary_cpu:.2f}",
                     f"{180 * cpu / 2 / 60:.1f}", " ".join(f"{k} {v}" for k, v in verdicts.items())])
        print("replicate fit CPU s per hypothesis: " + ", ".join(f"{k} {v:.1f}" for k, v in by_hypothesis.items()))
        table(rows[-1:], header)  # each pool size as soon as it is measured
        sys.stdout.flush()
    table(rows, header)


if __name__ == "__main__":
    main()
