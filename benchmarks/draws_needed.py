"""How many draws per chain each saved fit needed to pass the convergence gate: the lever of ESS-driven draws.

A chain's first N draws are exactly the draws of a run asked for N draws
(same seed, same tuning), so the saved fits of a study say how short each
could have been. For every ``fits/*/*.nc`` under the given results folder
this prints the shortest prefix (from a fixed list of lengths) at which the
sampled parameters pass :func:`mgbayes.diagnostics.check`'s R-hat and bulk
and tail ESS thresholds, with at most a handful of divergent transitions
and no gap in mean log density between chains, and its ratio to the draws
made. It is an optimistic bound: stopping at the first pass tests the gate
many times.

    python benchmarks/draws_needed.py mgbayes-demo
"""

import argparse
import warnings
from pathlib import Path

import xarray as xr

from mgbayes import diagnostics, inference

LENGTHS = (100, 150, 200, 250, 300, 400, 500, 600, 800, 1000, 1500, 2000)


def passes(report):
    """The gate of a verdict, without the E-BFMI check (too noisy on short prefixes to mean anything)."""
    return (report.rhat_max <= diagnostics.RHAT_MAX and min(report.ess_bulk_min, report.ess_tail_min) >= diagnostics.ESS_MIN
            and report.divergences <= diagnostics.DIVERGENCES_HANDFUL and not report.logp_gap > 0)


def needed(tree):
    """``(draws per chain, report)`` of the shortest passing prefix, or ``(None, report)`` of the whole run."""
    n_draw = tree["posterior"].sizes["draw"]
    for n in [m for m in LENGTHS if m < n_draw] + [n_draw]:
        part = xr.DataTree.from_dict({g: tree[g].to_dataset().isel(draw=slice(0, n)) for g in ("posterior", "sample_stats")})
        report = diagnostics.check(part)
        if passes(report):
            return n, report
    return None, report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="a study's output folder (holding fits/)")
    args = parser.parse_args()
    total = made = 0
    for path in sorted(Path(args.results).glob("fits/*/*.nc")):
        tree = inference.load(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            n, report = needed(tree)
        n_draw = tree["posterior"].sizes["draw"]
        tree.close()
        made += n_draw
        total += n or n_draw
        print(f"{path.parent.name + '/' + path.stem:<42} {'never' if n is None else n:>6} of {n_draw} draws per chain "
              f"({(n or n_draw) / n_draw:5.0%})  R-hat {report.rhat_max:.3f}, ESS bulk {report.ess_bulk_min:.0f}, "
              f"tail {report.ess_tail_min:.0f}")
    print(f"all fits: {total / max(made, 1):.0%} of the draws made (tuning not counted)")


if __name__ == "__main__":
    main()
