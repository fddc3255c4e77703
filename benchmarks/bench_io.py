"""Benchmark: reading long CSV files of 2, 20 and 200 MB (time and peak memory).

A long CSV (``time_h,frequency_Hz,Z_re_Ohm,Z_im_Ohm``, one row per point) is
read in one pass grouped by time, so ten times the data should take about
ten times as long; before, every time point rescanned all rows (2 MB 1.4 s,
20 MB 97 s, 200 MB unfinished after 240 s at 3.15 GB). Each size is read
in a fresh process, so the peak resident memory (``ru_maxrss``) is that of
one read; CPU time is printed beside wall time for loaded machines.

    python benchmarks/bench_io.py [--sizes 2 20 200] [--points 71]
"""

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import table  # noqa: E402

ROW = 50  # bytes of one row, about (repr of four floats)


def write_long_csv(path, megabytes, points, seed=0):
    """A long CSV of about ``megabytes`` MB: spectra of ``points`` frequencies, one per time."""
    rng = np.random.default_rng(seed)
    frequency = np.logspace(6, -1.7, points)
    with open(path, "w") as f:
        f.write("time_h,frequency_Hz,Z_re_Ohm,Z_im_Ohm\n")
        k = 0
        while f.tell() < megabytes * 1e6:
            t = 0.5 * k
            re = 30 + 2e4 / (1 + (frequency / 10.0) ** 2) * (1 + 0.01 * rng.standard_normal(points))
            im = -2e4 * (frequency / 10.0) / (1 + (frequency / 10.0) ** 2)
            f.write("".join(f"{t!r},{fk!r},{a!r},{b!r}\n" for fk, a, b in zip(frequency.tolist(), re.tolist(), im.tolist())))
            k += 1
    return path


def read_once(path):
    """Read ``path`` with mgbayes.io.read; print seconds, spectra and peak RSS (MiB) for the parent."""
    from mgbayes import io

    start, cpu = time.perf_counter(), time.process_time()
    series = io.read(path, format="long-csv")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(seconds, cpu, len(series), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[2, 20, 200], help="file sizes in MB")
    parser.add_argument("--points", type=int, default=71, help="frequencies per spectrum")
    parser.add_argument("--read", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read:
        return read_once(args.read)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            path = write_long_csv(Path(tmp) / f"long_{size:g}MB.csv", size, args.points)
            out = subprocess.run([sys.executable, __file__, "--read", str(path)], capture_output=True, text=True,
                                 check=True).stdout.split()
            seconds, cpu, spectra, rss = float(out[0]), float(out[1]), int(out[2]), float(out[3])
            rows.append([f"{path.stat().st_size / 1e6:.1f}", spectra, f"{seconds:.2f}", f"{cpu:.2f}", f"{rss:.0f}"])
            path.unlink()
    table(rows, ["MB", "spectra", "read s (wall)", "read s (CPU)", "peak RSS MiB"])
    for (a, b), (ra, rb) in zip(zip(args.sizes, args.sizes[1:]), zip(rows, rows[1:])):
        print(f"growth {b / a:g}x data ({a:g} -> {b:g} MB): {float(rb[2]) / float(ra[2]):.1f}x wall time, "
              f"{float(rb[3]) / float(ra[3]):.1f}x CPU time (linear: {b / a:g}x)")


if __name__ == "__main__":
    main()
