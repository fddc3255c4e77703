"""The fit pipeline: saved fits are found by their key without loading the others, reused and copied, not refitted."""

import numpy as np
import pytest
import xarray as xr

from mgbayes import fits, inference, parallel
from mgbayes.studyfile import QUICK, Experiment


def _saved(path, key):
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"a": (("chain", "draw"), np.zeros((1, 3)))})})
    tree.attrs.update(input_hash=key, diagnostics="fine")
    return inference.save(tree, path)


@pytest.fixture
def out(tmp_path):
    _saved(tmp_path / "fits" / "x" / "h.nc", "key-x")
    _saved(tmp_path / "fits" / "y" / "h.nc", "key-y")
    return tmp_path


def test_the_key_is_read_without_loading_and_only_the_match_is_loaded(out, monkeypatch):
    assert fits.saved_key(out / "fits" / "x" / "h.nc") == "key-x"
    loaded = []
    real = inference.load_or_none
    monkeypatch.setattr(inference, "load_or_none", lambda p, **k: loaded.append(p) or real(p, **k))
    path, tree = fits.cached(out, "key-y")
    assert path == out / "fits" / "y" / "h.nc" and tree.attrs["input_hash"] == "key-y"
    assert loaded == [path]
    assert fits.cached(out, "other") == (None, None) and loaded == [path]


def test_run_reuses_a_fit_with_the_same_key_and_copies_it_to_the_task_path(out, monkeypatch):
    monkeypatch.setattr(parallel, "map_fits", lambda tasks, **k: pytest.fail("sampled") if tasks else {})
    task = fits.Task("z/h", "key-y", hypothesis=None, data=None, settings={}, path=out / "fits" / "z" / "h.nc")
    lines = []
    done = fits.run([task], out, label="z", log=lines.append)
    assert done["z/h"].attrs["input_hash"] == "key-y" and fits.saved_key(task.path) == "key-y"
    assert "z/h: inputs unchanged, reusing" in lines[0]


def test_one_merge_of_sampler_settings(tmp_path):
    experiment = Experiment("e", tmp_path / "d.mpt", [], {}, sampler={"draws": 1000, "tune": 900, "chains": 4, "seed": 7,
                                                                      "target_accept": 0.95})
    assert fits.settings(experiment) == experiment.sampler
    assert fits.settings(experiment, quick=True) == {**experiment.sampler, **QUICK}
    assert fits.cell_seed(7, "c1", "h") != fits.cell_seed(7, "c2", "h")


def test_exact_refits_take_the_fits_settings_up_to_two_chains_of_500_draws():
    from mgbayes import study

    assert study.refit_settings({"draws": 1000, "tune": 1000, "chains": 4, "seed": 1}) == {
        "draws": 500, "tune": 700, "chains": 2}
    assert study.refit_settings({"draws": 300, "tune": 400, "chains": 2}) == {"draws": 300, "tune": 400, "chains": 2}


def test_tasks_with_the_same_inputs_are_fitted_once_and_saved_to_each_path(tmp_path, monkeypatch):
    sampled = []

    def fake_map_fits(tasks, *, on_result=None, **options):
        sampled.extend(tasks)
        for name in tasks:
            tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"a": (("chain", "draw"), np.ones((1, 3)))})})
            tree.attrs.update(input_hash="key-s", diagnostics="fine", fit_seconds=1.0)
            on_result(name, tree)
        return {}

    monkeypatch.setattr(parallel, "map_fits", fake_map_fits)
    tasks = [fits.Task(f"{e}/h", "key-s", hypothesis=None, data=None, settings={"chains": 1, "draws": 3, "tune": 0},
                       path=tmp_path / "fits" / e / "h.nc") for e in ("first", "twin")]
    arrived = []
    done = fits.run(tasks, tmp_path, label="both", log=lambda s: None, on_result=lambda t, r: arrived.append(t.name))
    assert sampled == ["first/h"] and arrived == ["first/h", "twin/h"]
    assert done["twin/h"] is done["first/h"] and all(fits.saved_key(t.path) == "key-s" for t in tasks)


def test_a_study_stops_its_fits_once_converged_unless_its_sampler_says_otherwise(monkeypatch):
    from mgbayes import studyfile
    from mgbayes.errors import HypothesisError

    assert studyfile._sampler({}, "s.toml")["until_converged"] is True
    assert studyfile._sampler({"until_converged": False}, "s.toml")["until_converged"] is False
    with pytest.raises(HypothesisError, match="until_converged = 'no'; expected true or false"):
        studyfile._sampler({"until_converged": "no"}, "s.toml")
    seen = {}
    monkeypatch.setattr(inference, "fit", lambda h, data, **kw: seen.update(kw) or xr.DataTree())
    settings = studyfile._sampler({"until_converged": False}, "s.toml")
    fits.fit(task=fits.Task("e/h", None, hypothesis=None, data=None, settings=settings, path=None))
    assert seen["until_converged"] is False and seen["draws"] == 1000 and seen["tune"] == inference.TUNE
