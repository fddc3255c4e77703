"""The command line end to end on a small study, and its error messages."""

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from mgbayes import cli, hypotheses, inference, io, simulate
from tests.studies import CT, TRUTH, write_small_study


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    write_small_study(root, times_h=[0.5, 5, 10, 20], title="small test study")
    out = root / "out"
    assert cli.main(["run", str(root / "study.toml"), "--out", str(out), "--quick"]) == 0
    return root, out


def test_outputs_exist_and_hold_results(small_study, capsys):
    root, out = small_study
    table = pd.read_csv(out / "comparison.csv")
    assert {"experiment", "hypothesis", "rank", "elpd_loo", "se", "elpd_diff", "dse", "weight", "verdict"} <= set(table.columns)
    # drifting data: the constant hypothesis cannot explain them
    assert table.set_index("hypothesis").loc["charge_transfer", "rank"] == 1
    assert (out / "comparison.md").read_text().count("|") > 10
    assert "\\begin{tabular}" in (out / "comparison.tex").read_text()
    params = pd.read_csv(out / "parameters.csv")
    assert "R_ct_0" in set(params["parameter"])
    for name in ("charge_transfer", "no_drift"):
        tree = inference.load(out / "fits" / "ocv" / f"{name}.nc")  # loaded and closed: a file left open lazily here made the rerun below crash in HDF5
        assert {"posterior", "posterior_predictive", "log_likelihood"} <= set(tree.children)
        tree.close()  # a lazily opened file left open crashes HDF5 when the rerun below opens it again
    pngs = sorted((out / "figures").glob("*.png"))
    assert len(pngs) >= 4 and len(list((out / "figures").glob("*.pdf"))) == len(pngs)
    for png in pngs:
        image = matplotlib.image.imread(png)
        assert image.std() > 0.01, png
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html and "QUICK" in html and "synthetic" in html
    assert "Rule" in (out / "report.md").read_text() or "rule" in (out / "report.md").read_text()


def test_rerun_reuses_finished_fits(small_study, capsys):
    root, out = small_study
    assert cli.main(["run", str(root / "study.toml"), "--out", str(out), "--quick"]) == 0
    assert capsys.readouterr().out.count("inputs unchanged, reusing") == 2


@pytest.mark.parametrize("args, message", [
    (["run", "missing.toml"], "does not exist"),
    (["fit", "nowhere.mpt", "--circuit", "R0-p(R1,C1)"], "nowhere.mpt"),
])
def test_user_errors_are_one_line(args, message, capsys):
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_bad_study_file_names_key(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text("[[experiment]]\nname = 'x'\ndata = 'd.csv'\nhypotheses = 'h'\nspeed = 3\n")
    assert cli.main(["run", str(path)]) == 2
    assert "unknown key(s) ['speed']" in capsys.readouterr().err


def test_bad_circuit_string_is_one_line(tmp_path, capsys):
    series = simulate.spectra(hypotheses.from_table({"family": "x", "physics": "y",
                                                     "circuit": {"electrode": "R0-p(R1,C1)", "electrodes": 1}}),
                              {"R0": 1.0, "R1": 10.0, "C1": 1e-4}, times_h=[0.0], symmetric=False,
                              frequency=np.logspace(4, -1, 12))
    io.write_long_csv(series, tmp_path / "s.csv")
    assert cli.main(["fit", str(tmp_path / "s.csv"), "--circuit", "R0-p(R1"]) == 2
    assert "position" in capsys.readouterr().err


def test_version(capsys):
    from mgbayes import __version__

    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"mgbayes {__version__}"


def test_messages_name_options_not_python_arguments():
    assert cli._cli_words("x: pass format= one of: a, b") == "x: pass --format one of: a, b"
    assert "--flip-imag" in cli._cli_words("looks flipped: pass flip_imag=True to mgbayes.io.read, or negate it")


@pytest.mark.slow
def test_compare_writes_results_tables_and_figures_named_by_circuit(tmp_path, capsys):
    series = simulate.spectra(hypotheses.load(CT), TRUTH, times_h=[0.5], frequency=simulate.frequency_grid(1e5, 0.05, 4),
                              area_cm2=1.131, seed=2)
    io.write_mpt(series, tmp_path / "cell.mpt")
    out = tmp_path / "out"
    args = ["compare", str(tmp_path / "cell.mpt"), "--circuit", "R0-p(R1,CPE1)", "--circuit", "R0-p(R1,C1)",
            "--draws", "150", "--chains", "2", "--area", "1.131", "--out", str(out)]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "R0-p(R1,CPE1)" in printed.split("LOO unit")[-1]  # the table names the circuits, not row numbers
    assert sorted(p.name for p in (out / "fits" / "cell").glob("*.nc")) == ["R0-p_R1_C1.nc", "R0-p_R1_CPE1.nc"]
    table = pd.read_csv(out / "comparison.csv")
    assert set(table.hypothesis) == {"R0-p(R1,CPE1)", "R0-p(R1,C1)"}
    assert (out / "report.html").is_file() and list((out / "figures").glob("*.png"))
    tree = inference.load(out / "fits" / "cell" / "R0-p_R1_C1.nc")
    assert tree["posterior"]["R1"].attrs["unit"] == "Ohm cm2"


@pytest.mark.slow
def test_fits_in_the_pool_and_one_after_another_give_the_same_study(small_study, tmp_path):
    root, out = small_study  # made with the default scheduler: a process pool, chains one after another per fit
    serial = tmp_path / "serial"
    assert cli.main(["run", str(root / "study.toml"), "--out", str(serial), "--quick", "--scheduler", "serial"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(serial / "comparison.csv"), pd.read_csv(out / "comparison.csv"))
    for name in ("charge_transfer", "no_drift"):
        a, b = (inference.load(d / "fits" / "ocv" / f"{name}.nc") for d in (out, serial))
        for var in a["posterior"].data_vars:
            np.testing.assert_array_equal(a["posterior"][var].values, b["posterior"][var].values)
        a.close()
        b.close()
