"""Many-cell studies: cell tables, seeds, parallel fits (process pool and Dask) and cell-unit LOO."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mgbayes import cells, cli, fits, hypotheses, io, parallel, simulate, study
from mgbayes.errors import HypothesisError, MgbayesError

SINGLE_ARC = Path(__file__).parent / "data" / "single_arc.toml"  # a small single-arc model named charge_transfer
SMALL = {"draws": 100, "tune": 150, "chains": 2, "seed": 3, "target_accept": 0.9}


def _write_cells(root, n=3):
    """``n`` small synthetic cells (few frequencies), even ones without drift, and a metadata table."""
    (root / "cells").mkdir(parents=True)
    ct = hypotheses.load(SINGLE_ARC)
    rows = ["file,cell,area_cm2,electrolyte,temperature_C"]
    for k in range(n):
        truth = {"R_el": 30.0, "R_ct_0": 2e4 * (1 + 0.2 * k), "R_ct_rate": 0.45 * (k % 2),
                 "CPE_dl_T": 4e-5, "CPE_dl_P": 0.9}
        series = simulate.spectra(ct, truth, times_h=[0.5, 10, 20], frequency=simulate.frequency_grid(1e5, 0.05, 2),
                                  area_cm2=1.131, seed=k)
        io.write_mpt(series, root / "cells" / f"c{k}.mpt")
        rows.append(f"c{k}.mpt,cell{k},1.131,{'EC' if k % 2 else 'THF'},25")
    (root / "cells" / "cells.csv").write_text("\n".join(rows) + "\n")
    (root / "hyp").mkdir()
    shutil.copy(SINGLE_ARC, root / "hyp" / "charge_transfer.toml")
    (root / "hyp" / "constant.toml").write_text(SINGLE_ARC.read_text()
                                                .replace('name = "charge_transfer"', 'name = "no_drift"')
                                                .replace('R_ct = "linear"', 'R_ct = "constant"'))
    return root


STUDY = """
title = "many cells"
provenance = "synthetic"
scheduler = "serial"
[sampler]
draws = 100
tune = 150
chains = 2
seed = 3
[[experiment]]
name = "many"
data = "cells/*.mpt"
cells = "cells/cells.csv"
symmetric = true
hypotheses = "hyp"
"""


@pytest.fixture(scope="module")
def cell_root(tmp_path_factory):
    root = _write_cells(tmp_path_factory.mktemp("cells"))
    (root / "study.toml").write_text(STUDY)
    return root


def test_cells_from_glob_and_table(cell_root):
    found = cells.read_cells("cells/*.mpt", "cells/cells.csv", base=cell_root)
    assert [c.name for c in found] == ["cell0", "cell1", "cell2"]
    assert found[1].area_cm2 == pytest.approx(1.131)
    assert found[1].metadata == {"electrolyte": "EC", "temperature_C": 25}
    # a folder works too, the table itself is not a data file
    assert [c.path for c in cells.read_cells("cells", "cells/cells.csv", base=cell_root)] == [c.path for c in found]
    # without a table, cells are named after their files
    assert [c.name for c in cells.read_cells("cells/*.mpt", base=cell_root, area_cm2=2.0)] == ["c0", "c1", "c2"]


def test_cell_table_errors_name_the_file(cell_root, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("file,cell\nc0.mpt,a\n")
    with pytest.raises(HypothesisError, match="bad.csv: no row for data file c1.mpt|not among"):
        cells.read_cells(str(cell_root / "cells" / "*.mpt"), str(bad))
    bad.write_text("name,cell\nc0.mpt,a\n")
    with pytest.raises(HypothesisError, match=r"bad.csv: missing column\(s\) \['file'\]"):
        cells.read_cells(str(cell_root / "cells" / "*.mpt"), str(bad))
    with pytest.raises(HypothesisError, match="no data files match"):
        cells.read_cells("nothing/*.mpt", base=tmp_path)


def test_study_keys_for_cells(cell_root, tmp_path):
    s = study.load_study(cell_root / "study.toml")
    assert s.scheduler == "serial" and [c.name for c in s.experiments[0].cells] == ["cell0", "cell1", "cell2"]
    path = tmp_path / "s.toml"
    path.write_text(STUDY.replace('cells = "cells/cells.csv"', 'cells = "cells/cells.csv"\npooling = "sometimes"')
                    .replace('"cells/', f'"{cell_root}/cells/').replace('"hyp"', f'"{cell_root}/hyp"'))
    with pytest.raises(HypothesisError, match=r"s.toml \[experiment 1\]: pooling = 'sometimes'"):
        study.load_study(path)


def test_seeds_differ_by_cell_and_hypothesis_and_are_stable():
    seeds = {fits.cell_seed(3, c, h) for c in ("a", "b") for h in ("x", "y")}
    assert len(seeds) == 4
    assert fits.cell_seed(3, "a", "x") == fits.cell_seed(3, "a", "x") != fits.cell_seed(4, "a", "x")


def _boom(*, fail_file):
    """Fails the first time (leaves a marker), succeeds on the retry."""
    from pathlib import Path

    if not Path(fail_file).exists():
        Path(fail_file).write_text("failed once")
        raise RuntimeError("flaky")
    return 42


def _double(*, x):
    return 2 * x


def test_map_fits_retries_then_succeeds(tmp_path):
    lines = []
    out = parallel.map_fits({"a": (_boom, {"fail_file": str(tmp_path / "m")})}, scheduler="serial", log=lines.append)
    assert out == {"a": 42} and "[1/1] a" in lines[0]
    with pytest.raises(MgbayesError, match="fit b failed after 1 attempt"):
        parallel.map_fits({"b": (_boom, {"fail_file": str(tmp_path / "n")})}, scheduler="serial", retries=0)


def test_map_fits_process_pool_retries(tmp_path):
    out = parallel.map_fits({"a": (_boom, {"fail_file": str(tmp_path / "m")}), "b": (_double, {"x": 7})},
                            scheduler="processes", workers=2, log=lambda s: None)
    assert list(out) == ["a", "b"] and out == {"a": 42, "b": 14}


@pytest.mark.parametrize("scheduler", ["serial", "processes"])
def test_map_fits_hands_each_result_to_on_result_here_as_it_arrives(scheduler):
    import os

    seen = []
    out = parallel.map_fits({"a": (_double, {"x": 1}), "b": (_double, {"x": 2})}, scheduler=scheduler, workers=2,
                            log=lambda s: None, on_result=lambda name, r: seen.append((name, r, os.getpid())))
    assert sorted(seen) == [("a", 2, os.getpid()), ("b", 4, os.getpid())] and out == {"a": 2, "b": 4}

    def refuse(name, result):
        raise MgbayesError(f"stop at {name}")

    with pytest.raises(MgbayesError, match="stop at"):
        parallel.map_fits({"a": (_double, {"x": 1}), "b": (_double, {"x": 2})}, scheduler=scheduler, workers=2,
                          log=lambda s: None, on_result=refuse)


def _mark(*, path):
    import time
    from pathlib import Path

    Path(path).write_text("ran")
    time.sleep(2.0)  # long enough for the caller to cancel what is still waiting, even on a loaded machine
    return path


def _interrupted():
    raise KeyboardInterrupt("sampling was interrupted")  # what a worker's fit raises after Ctrl-C


def test_no_task_starts_after_ctrl_c_in_the_pool(tmp_path):
    tasks = {"first": (_interrupted, {}), **{f"t{k}": (_mark, {"path": str(tmp_path / f"t{k}")}) for k in range(8)}}
    with pytest.raises(KeyboardInterrupt):
        parallel.map_fits(tasks, scheduler="processes", workers=1, log=lambda s: None)
    assert len(list(tmp_path.glob("t*"))) <= 3  # at most what the pool had already queued (8 ran before the fix)


def test_map_fits_dask_retries_a_failed_fit(tmp_path):
    out = parallel.map_fits({"a": (_boom, {"fail_file": str(tmp_path / "m")}), "b": (_double, {"x": 7})},
                            scheduler="local", workers=1, log=lambda s: None)
    assert list(out) == ["a", "b"] and out == {"a": 42, "b": 14}
    with pytest.raises(MgbayesError, match="fit c failed after 1 attempt"):
        parallel.map_fits({"c": (_boom, {"fail_file": str(tmp_path / "n")})}, scheduler="local", workers=1, retries=0)


def _fit_tasks(root):
    experiment = study.load_study(root / "study.toml").experiments[0]
    h = hypotheses.load(root / "hyp" / "charge_transfer.toml")
    return {cell.name: fits.cell_task(experiment, cell, h, SMALL).job() for cell in experiment.cells}


def _draws(results):
    return {c: {v: r["posterior"][v].values for v in ("R_ct_0", "R_ct_rate", "noise_sigma")} for c, r in results.items()}


def test_serial_pool_and_dask_give_identical_posteriors(cell_root):
    pytest.importorskip("distributed")
    tasks = _fit_tasks(cell_root)
    serial = _draws(parallel.map_fits(tasks, scheduler="serial", log=lambda s: None))
    pool = _draws(parallel.map_fits(tasks, scheduler="processes", workers=2, log=lambda s: None))
    dask = _draws(parallel.map_fits(tasks, scheduler="local", workers=2, log=lambda s: None))
    for cell in serial:
        for v in serial[cell]:
            np.testing.assert_array_equal(pool[cell][v], serial[cell][v])
            np.testing.assert_array_equal(dask[cell][v], serial[cell][v])
    assert not np.array_equal(serial["cell0"]["R_ct_0"], serial["cell1"]["R_ct_0"])


HIERARCHY = {"charge_transfer": '\n[hierarchy]\nR_ct_0 = { scale = "log", sd = { dist = "halfnormal", sigma = 0.5 } }\n'
                                  'R_ct_rate = { scale = "log", sd = { dist = "halfnormal", sigma = 1.0 } }\n',
             "no_drift": '\n[hierarchy]\nR_ct = { scale = "log", sd = { dist = "halfnormal", sigma = 0.5 } }\n'}


def _hierarchical(root, *, centred=False):
    """The two hypotheses with cell-to-cell scatter of the arc resistance (and its drift), in ``hyp_h``.

    ``centred``: each cell's value sampled itself (in ``hyp_c``), as data that fix it cell by cell
    (a spectra series per cell) want; standardised offsets there make a funnel that NUTS crosses only
    with its deepest trees (the pooled charge_transfer fit of the end-to-end study took 134 s for
    2 x 100 draws, sampled again at target_accept 0.97 with 2000 tuning and 1023 leapfrog steps per draw).
    """
    folder = root / ("hyp_c" if centred else "hyp_h")
    folder.mkdir(exist_ok=True)
    for name, extra in HIERARCHY.items():
        source = root / "hyp" / ("constant.toml" if name == "no_drift" else f"{name}.toml")
        (folder / f"{name}.toml").write_text(source.read_text() + (extra.replace(" } }", " }, centred = true }")
                                                                    if centred else extra))
    return [hypotheses.load(folder / f"{n}.toml") for n in HIERARCHY]


def test_cells_stack_into_one_model(cell_root):
    from mgbayes import inference, observations

    series = {c.name: io.read(c.path, area_cm2=c.area_cm2, symmetric=True)
              for c in cells.read_cells("cells/*.mpt", "cells/cells.csv", base=cell_root)}
    obs = observations.observe(series)
    assert obs.dims == ("cell", "time", "frequency", "part") and obs.pointwise_dims == ("cell", "time", "frequency")
    assert obs.values.shape[:2] == (3, 3) and list(obs.coords["cell"]) == ["cell0", "cell1", "cell2"]
    ct = _hierarchical(cell_root)[0]
    model, _ = inference.build_model(ct, obs)
    assert model.named_vars_to_dims["R_ct_0_z"] == ("cell",) and "R_el" in model.named_vars
    assert np.isfinite(model.compile_logp()(model.initial_point()))
    from mgbayes.data import SpectrumSeries
    from mgbayes.errors import DataError

    with pytest.raises(DataError, match="c2.mpt: cell 'cell2' has another time grid than cell 'cell0'"):
        observations.observe({**series, "cell2": SpectrumSeries(series["cell2"].spectra[:2])})


@pytest.mark.slow
def test_many_cell_study_end_to_end(cell_root, capsys):
    _hierarchical(cell_root, centred=True)
    (cell_root / "both.toml").write_text(STUDY.replace('hypotheses = "hyp"', 'hypotheses = "hyp_c"\npooling = "both"'))
    out = cell_root / "out"
    assert cli.main(["run", str(cell_root / "both.toml"), "--out", str(out), "--workers", "2",
                     "--scheduler", "processes"]) == 0
    table = pd.read_csv(out / "comparison.csv")
    assert set(table.hypothesis) == {"charge_transfer", "no_drift", "charge_transfer (pooled)", "no_drift (pooled)"}
    pooled = pd.read_csv(out / "parameters.csv").query("hypothesis == 'charge_transfer (pooled)'")
    assert {"R_ct_0_mu", "R_ct_0_sd", "R_ct_0[cell1]", "R_el"} <= set(pooled.parameter)
    assert (out / "figures" / "many_forest_pooled_charge_transfer.png").is_file()
    wins = pd.read_csv(out / "many_wins.csv")
    assert wins["best"].sum() == 3 and {"hypothesis", "best", "preferred", "cells", "share"} <= set(wins.columns)
    # cell1 drifts: charge transfer with a linear drift must win there
    per_cell = pd.read_csv(out / "many_per_cell.csv")
    assert per_cell[(per_cell.cell == "cell1") & (per_cell["rank"] == 1)].hypothesis.item().startswith("charge_transfer")
    assert {"electrolyte", "temperature_C"} <= set(per_cell.columns)
    params = pd.read_csv(out / "parameters.csv")
    assert set(params.cell.dropna()) == {"cell0", "cell1", "cell2"}
    assert len(list((out / "figures").glob("many_forest_*.png"))) == 2  # independent fits and pooled model
    assert len(list((out / "fits" / "many").glob("*/*.nc"))) == 8
    html = (out / "report.html").read_text()
    assert "LOO unit: cell" in html and "best in" in html
    # a rerun reuses every fit, whatever the scheduler
    capsys.readouterr()
    assert cli.main(["run", str(cell_root / "both.toml"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "6 fit(s) with unchanged inputs reused" in text and text.count("pooled") >= 2


def test_cell_loo_sums_units_per_cell():
    import arviz as az
    import xarray as xr

    rng = np.random.default_rng(0)
    loos = []
    for k in range(3):
        tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"a": (("chain", "draw"), rng.normal(size=(2, 200)))}),
                                      "log_likelihood": xr.Dataset({"y": (("chain", "draw", "obs"),
                                                                          rng.normal(-2, 0.01, (2, 200, 4 + k)))})})
        loos.append(az.loo(tree, pointwise=True, var_name="y"))
    combined = cells.cell_loo(loos, ["a", "b", "c"])
    assert combined.n_data_points == 3 and list(combined.elpd_i.cell.values) == ["a", "b", "c"]
    assert combined.elpd == pytest.approx(sum(l.elpd for l in loos))
    np.testing.assert_allclose(combined.elpd_i.values, [float(l.elpd_i.sum()) for l in loos])
