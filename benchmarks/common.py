"""Shared helpers for the benchmarks: the OCV demo data and a timer.

Benchmarks print ratios against a baseline measured in the same process
(machines are noisy); they are never timed assertions in tests.
"""

import time
from contextlib import contextmanager

import numpy as np

from mgbayes import hypotheses, simulate
from mgbayes.demo import AREA_CM2, ocv_parameters
from mgbayes.hypotheses import MODELS_DIR


def ocv_series(n_spectra=40, n_frequency=71, seed=1):
    """A drift series of ``n_spectra`` spectra (1 MHz to 20 mHz) from the charge-transfer hypothesis."""
    h = hypotheses.load(MODELS_DIR / "ocv_drift" / "charge_transfer.toml")
    frequency = np.logspace(6, np.log10(0.02), n_frequency)
    times = np.linspace(0.5, 20.0, n_spectra)
    return h, simulate.spectra(h, ocv_parameters(), times_h=times, frequency=frequency, area_cm2=AREA_CM2,
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
