"""Benchmark 4: the first run of ``mgbayes demo`` (empty compile caches) and a warm rerun, phase by phase.

Each run is a fresh process writing to a fresh output folder, so no fit is
reused; only the compile caches differ: PyTensor's compile folder, Numba's
cache and mgbayes's compiled-density cache are new temporary folders for
the cold run and the same folders again for the warm run. The user's own
caches (``~/.pytensor``, ``~/.cache/mgbayes``) are never read or written.

Every run reports where its wall time went, by phase (time inside nested
phases is counted once, in the innermost one) and by stage of the study
(fits, comparison with its exact refits, outputs). On a loaded machine the
absolute seconds stretch; the phase *shares* and the cold/warm ratio are
what to compare.

The phases are timed in the demo's own process. By default its fits run in
a pool of worker processes (``mgbayes demo``'s default), whose phases this
process does not see: their time shows as the ``fits`` stage's ``other``.
``--scheduler serial`` runs every fit in the demo's process, one after
another with its chains in parallel, for the full phase split.

    python benchmarks/bench_demo.py            # the full demo (paper.toml settings)
    python benchmarks/bench_demo.py --quick    # mgbayes demo --quick
    python benchmarks/bench_demo.py --cold-only --scheduler serial
"""

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: (module, attribute, phase): what is timed. Stages (first column of the table) are the outermost
#: of fits.run (every fit of the study, the outside data alone included), study._compare and outputs.write_all.
PHASES = [
    ("pytensor.compile.maker", "FunctionMaker.__init__", "compile: graph rewriting"),
    ("pytensor.compile.maker", "FunctionMaker.create", "compile: linking"),
    ("numba.core.dispatcher", "Dispatcher._compile_for_args", "compile: numba JIT"),
    ("mgbayes.cache", "load", "compile: load from cache"),
    ("mgbayes.cache", "store", "compile: store in cache"),
    ("mgbayes.inference", "build_model", "build model"),
    ("mgbayes.sampler", "find_modes", "mode search"),
    ("mgbayes.sampler", "laplace_covariance", "mode search"),
    ("mgbayes.sampler", "starting_points", "mode search"),
    ("pymc", "sample", "sampling (NUTS)"),
    ("mgbayes.inference", "finish", "post-processing"),
    ("mgbayes.inference", "evaluate_draws", "post-processing"),
    ("mgbayes.inference", "save", "saving results"),
    ("mgbayes.inference", "load", "reading saved results"),
    ("mgbayes.fits", "saved_key", "reading saved results"),
    ("mgbayes.plots", None, "figures"),
    ("mgbayes.report", None, "report and tables"),
    ("mgbayes.sensitivity", None, "sensitivity"),
    ("mgbayes.kk", None, "Kramers-Kronig"),
    ("mgbayes.psis", None, "PSIS-LOO"),
]
STAGES = [("mgbayes.fits", "run", "fits"),
          ("mgbayes.study", "_compare", "comparison (with exact refits)"),
          ("mgbayes.compare", "reloo", "comparison (with exact refits)"),
          ("mgbayes.outputs", "write_all", "outputs")]


class Clock:
    """Exclusive wall time per (stage, phase): time in a nested phase counts only there."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self.stack = [("other", "other")]
        self.mark = time.perf_counter()

    def _credit(self):
        now = time.perf_counter()
        self.seconds[self.stack[-1]] += now - self.mark
        self.mark = now

    def wrap(self, function, *, phase=None, stage=None):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            self._credit()
            top_stage, top_phase = self.stack[-1]
            self.stack.append((top_stage if top_stage != "other" or stage is None else stage,
                               phase or (top_phase if top_phase != "other" else "other")))
            try:
                return function(*args, **kwargs)
            finally:
                self._credit()
                self.stack.pop()
        return timed


def _patch(clock, module_name, attribute, **kind):
    import importlib
    import inspect

    module = importlib.import_module(module_name)
    if attribute is None:  # every public function of the module
        for name, f in vars(module).items():
            if inspect.isfunction(f) and f.__module__ == module_name and not name.startswith("_"):
                setattr(module, name, clock.wrap(f, **kind))
        return
    owner, _, name = attribute.rpartition(".")
    target = getattr(module, owner) if owner else module
    setattr(target, name, clock.wrap(getattr(target, name), **kind))


def child(out, quick, scheduler):
    """Run the demo in this process with every phase timed; print the table as JSON on the last line."""
    clock = Clock()
    for module, attribute, phase in PHASES:
        _patch(clock, module, attribute, phase=phase)
    for module, attribute, stage in STAGES:
        _patch(clock, module, attribute, stage=stage)
    from mgbayes import cli

    start = time.perf_counter()
    code = cli.main(["demo", "--out", str(out)] + (["--quick"] if quick else [])
                    + (["--scheduler", scheduler] if scheduler else []))
    clock._credit()
    total = time.perf_counter() - start
    rows = [[stage, phase, s] for (stage, phase), s in sorted(clock.seconds.items())]
    print(json.dumps({"total": total, "rows": rows, "code": code}))


def run(cache, out, quick, log, scheduler=None):
    """One demo in a fresh process with its compile caches under ``cache``; returns the child's JSON."""
    # base_compiledir, not compiledir: PyTensor keeps its Numba kernels in base_compiledir/numba (not in
    # NUMBA_CACHE_DIR), so with compiledir alone the "cold" run loaded every kernel the user's ~/.pytensor held.
    env = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={cache / 'pytensor'}", NUMBA_CACHE_DIR=str(cache / "numba"),
               MGBAYES_CACHE_DIR=str(cache / "densities"), PYTHONPATH=str(ROOT))
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(out)] + (["--quick"] if quick else [])
    command += ["--scheduler", scheduler] if scheduler else []
    with open(log, "w") as handle:  # the demo's own log, then the timing table as JSON on the last line
        subprocess.run(command, env=env, check=True, stdout=handle, stderr=subprocess.STDOUT, text=True)
    return json.loads(Path(log).read_text().strip().splitlines()[-1])


def show(name, result):
    total = result["total"]
    print(f"\n{name}: {total:.1f} s wall")
    by_phase, by_stage = defaultdict(float), defaultdict(float)
    for stage, phase, s in result["rows"]:
        by_phase[phase] += s
        by_stage[stage] += s
    for title, table in (("phase", by_phase), ("stage", by_stage)):
        print(f"  {title:<34} {'s':>8} {'share':>7}")
        for key, s in sorted(table.items(), key=lambda kv: -kv[1]):
            print(f"  {key:<34} {s:8.1f} {s / total:7.1%}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="time mgbayes demo --quick")
    parser.add_argument("--cold-only", action="store_true", help="skip the warm rerun")
    parser.add_argument("--keep", help="keep the outputs, caches and logs in this folder")
    parser.add_argument("--scheduler", default=None,
                        help="the demo's --scheduler ('serial': every phase timed, fits one after another)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(Path(args.child), args.quick, args.scheduler)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(args.keep or tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        label = "mgbayes demo" + (" --quick" if args.quick else "") + (f" --scheduler {args.scheduler}" if args.scheduler else "")
        cold = run(tmp / "cache", tmp / "out_cold", args.quick, tmp / "cold.log", args.scheduler)
        show(f"{label}, cold (empty compile caches)", cold)
        if not args.cold_only:
            warm = run(tmp / "cache", tmp / "out_warm", args.quick, tmp / "warm.log", args.scheduler)
            show(f"{label}, warm (caches from the cold run)", warm)
            print(f"\nwarm/cold = {warm['total'] / cold['total']:.2f}")


if __name__ == "__main__":
    main()
