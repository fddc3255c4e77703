"""Shared helpers for the benchmarks: the OCV demo data and a timer.

Benchmarks print ratios against a baseline measured in the same process
(machines are noisy); they are never timed assertions in tests.
"""

import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from mgbayes import hypotheses, simulate
from mgbayes.demo import AREA_CM2

#: The single-arc charge-transfer model (R_el + 2 R_ct(t) || CPE_dl) the benchmarks were written for; the
#: shipped OCV hypotheses hold the film arc too since issue 16, and bench_logp hand-codes this one.
SINGLE_ARC = Path(__file__).resolve().parents[1] / "tests" / "data" / "single_arc.toml"
SINGLE_ARC_TRUTH = {"R_el": 40.0, "R_ct_0": 2.0e4, "R_ct_rate": 0.45, "CPE_dl_T": 3.4e-5, "CPE_dl_P": 0.92}


def ocv_series(n_spectra=40, n_frequency=71, seed=1):
    """A drift series of ``n_spectra`` spectra (1 MHz to 20 mHz) from the single-arc charge-transfer model."""
    h = hypotheses.load(SINGLE_ARC)
    frequency = np.logspace(6, np.log10(0.02), n_frequency)
    times = np.linspace(0.5, 20.0, n_spectra)
    return h, simulate.spectra(h, SINGLE_ARC_TRUTH, times_h=times, frequency=frequency, area_cm2=AREA_CM2,
                               noise=0.01, seed=seed)


@contextmanager
def timer(results, key):
    """Store the wall time of the block in ``results[key]``."""
    start = time.perf_counter()
    yield
    results[key] = time.perf_counter() - start


def table(rows, header):
    """Print a plain table."""
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
