"""Benchmark 5: wall time of a many-cell study against the number of workers.

Twenty small synthetic cells (a few spectra of a drift series each), one
hypothesis each, fitted by :func:`mgbayes.parallel.map_fits` with 1, 2, 4, ...
workers on the local process pool (or a Dask ``LocalCluster`` with
``--scheduler local``). Speed-up is relative to one worker in the same run;
it cannot exceed the machine's CPU count, printed first.

    python benchmarks/bench_workers.py [--cells 20] [--workers 1 2 4] [--scheduler processes|local]
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from common import SINGLE_ARC, table, timer  # noqa: E402

import numpy as np  # noqa: E402

from mgbayes import cells, fits, hypotheses, io, parallel, simulate, study  # noqa: E402

SAMPLER = {"draws": 200, "tune": 200, "chains": 2, "seed": 1, "target_accept": 0.9}


def make_cells(root, n):
    """``n`` small cells with scattered charge-transfer resistance and drift; returns the experiment."""
    h = hypotheses.load(SINGLE_ARC)
    rng = np.random.default_rng(0)
    rows = ["file,cell,area_cm2"]
    for k in range(n):
        truth = {"R_el": 30.0, "R_ct_0": 2e4 * np.exp(rng.normal(0, 0.3)), "R_ct_rate": 0.4 * np.exp(rng.normal(0, 0.3)),
                 "CPE_dl_T": 4e-5, "CPE_dl_P": 0.9}
        series = simulate.spectra(h, truth, times_h=[0.5, 10, 20], frequency=simulate.frequency_grid(1e5, 0.05, 3),
                                  area_cm2=1.131, seed=k)
        io.write_mpt(series, root / f"cell{k:02d}.mpt")
        rows.append(f"cell{k:02d}.mpt,cell{k:02d},1.131")
    (root / "cells.csv").write_text("\n".join(rows) + "\n")
    experiment = study.Experiment(name="bench", data_path=root, hypothesis_paths=[h.path], information={},
                                  symmetric=True, sampler=SAMPLER)
    experiment.cells = cells.read_cells(str(root / "*.mpt"), str(root / "cells.csv"))
    return experiment, h


def main(n_cells=20, workers=(1, 2, 4), scheduler="processes"):
    print(f"{os.cpu_count()} CPUs; {n_cells} cells × 1 hypothesis, {SAMPLER['chains']} chains × "
          f"{SAMPLER['draws']} draws ({SAMPLER['tune']} tuning); scheduler: {scheduler}")
    with tempfile.TemporaryDirectory() as tmp:
        experiment, h = make_cells(Path(tmp), n_cells)
        tasks = {c.name: fits.cell_task(experiment, c, h, SAMPLER).job() for c in experiment.cells}
        # warm the compile caches with the same scheduler (a cold first run was 2x slower here)
        parallel.map_fits(dict(list(tasks.items())[:2]), scheduler=scheduler, workers=2, log=lambda s: None)
        rows, base, reference = [], None, None
        for n in workers:
            times = {}
            with timer(times, "wall"):
                results = parallel.map_fits(tasks, scheduler=scheduler, workers=n, log=lambda s: None)
            draws = np.stack([r["posterior"]["R_ct_0"].values for r in results.values()])
            reference = draws if reference is None else reference
            base = base or times["wall"]
            rows.append([n, f"{times['wall']:.1f}", f"{times['wall'] / n_cells:.2f}", f"{base / times['wall']:.2f}",
                         "yes" if np.array_equal(draws, reference) else "NO"])
    table(rows, ["workers", "wall s", "s per cell", "speed-up", "same draws"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--scheduler", default="processes")
    args = parser.parse_args()
    main(args.cells, tuple(args.workers), args.scheduler)
