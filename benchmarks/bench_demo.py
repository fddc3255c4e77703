"""Benchmark 4: cold start (empty compile caches) and warm start of ``mgbayes demo --quick``.

Both runs write to fresh output folders, so no fit is reused; only the
compile caches differ: PyTensor's C-code cache, Numba's cache and mgbayes's
compiled-density cache are fresh temporary folders for the cold run and the
same folders again for the warm run.

    python benchmarks/bench_demo.py
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(cache, out):
    env = dict(os.environ, PYTENSOR_FLAGS=f"compiledir={cache / 'pytensor'}", NUMBA_CACHE_DIR=str(cache / "numba"),
               MGBAYES_CACHE_DIR=str(cache / "densities"))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mgbayes.cli", "demo", "--quick", "--out", str(out)], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cold = run(tmp / "cache", tmp / "out1")
        warm = run(tmp / "cache", tmp / "out2")
    print(f"mgbayes demo --quick: cold {cold:.1f} s, warm {warm:.1f} s, warm/cold = {warm / cold:.2f}")


if __name__ == "__main__":
    main()
