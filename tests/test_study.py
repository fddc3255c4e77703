"""How a study schedules its fits: all experiments' fits at once, the smallest first, each comparison as soon as its fits are in."""

import numpy as np
import xarray as xr

from mgbayes import fits, hypotheses, io, simulate, study
from tests.studies import CT, TRUTH, write_small_study


def test_smallest_experiment_is_fitted_first_and_compared_before_the_others_are_fitted(tmp_path, monkeypatch):
    short = simulate.spectra(hypotheses.load(CT), TRUTH, times_h=[0.5, 5],
                             frequency=simulate.frequency_grid(1e5, 0.05, 4), area_cm2=1.131, seed=6)
    io.write_mpt(short, tmp_path / "short.mpt")
    write_small_study(tmp_path, times_h=[0.5, 5, 10, 20], title="t", extra="""
[[experiment]]
name = "short"
data = "short.mpt"
area_cm2 = 1.131
symmetric = true
hypotheses = "hyp"
""")
    events = []

    def fake_fit(*, task):
        events.append(("fit", task.name))
        tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"a": (("chain", "draw"), np.zeros((1, 2)))})})
        tree.attrs.update(fit_seconds=0.0, diagnostics="fine")
        return tree

    monkeypatch.setattr(fits, "fit", fake_fit)
    experiments = study.load_study(tmp_path / "study.toml").experiments
    fitted, prepared = study.fit_experiments(
        experiments, tmp_path / "out", scheduler="serial", log=lambda s: None,
        then=lambda e, hyps, data, results, alone: events.append(("compare", e.name, sorted(results), alone)))
    assert events == [("fit", "short/charge_transfer"), ("fit", "short/no_drift"),
                      ("compare", "short", ["charge_transfer", "no_drift"], False),
                      ("fit", "ocv/charge_transfer"), ("fit", "ocv/no_drift"),
                      ("compare", "ocv", ["charge_transfer", "no_drift"], True)]  # the last: nothing else runs
    assert list(fitted["ocv"]) == ["charge_transfer", "no_drift"] and set(prepared) == {"ocv", "short"}
    assert (tmp_path / "out" / "fits" / "short" / "no_drift.nc").is_file()


def test_the_costliest_fits_start_at_once_then_the_smallest_experiments():
    from types import SimpleNamespace

    def task(name, n_free):
        return SimpleNamespace(name=name, hypothesis=SimpleNamespace(free_parameters=lambda: list(range(n_free))))

    groups = {"big": [task("big/a", 3), task("big/b", 12)], "small": [task("small/c", 4), task("small/d", 7)],
              "alone": [task("alone/e", 2)]}
    size = {"big": 6000, "small": 4, "alone": 0}
    names = [[t.name for t in study.schedule(groups, size, workers=w)] for w in (1, 2, 3)]
    assert names[0] == ["alone/e", "small/d", "small/c", "big/b", "big/a"]
    assert names[1] == ["big/b", "alone/e", "small/d", "small/c", "big/a"]
    assert names[2] == ["big/b", "big/a", "alone/e", "small/d", "small/c"]
