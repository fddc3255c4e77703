"""The command line end to end on a small study, and its error messages."""

import arviz as az
import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from mgbayes import cli, hypotheses, io, simulate
from tests.studies import write_small_study


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
        tree = az.from_netcdf(out / "fits" / "ocv" / f"{name}.nc")
        assert {"posterior", "posterior_predictive", "log_likelihood"} <= set(tree.children)
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
    series = simulate.spectra(hypotheses.from_table({"experiment": "x", "physics": "y",
                                                     "circuit": {"electrode": "R0-p(R1,C1)", "electrodes": 1}}),
                              {"R0": 1.0, "R1": 10.0, "C1": 1e-4}, times_h=[0.0], symmetric=False,
                              frequency=np.logspace(4, -1, 12))
    io.write_long_csv(series, tmp_path / "s.csv")
    assert cli.main(["fit", str(tmp_path / "s.csv"), "--circuit", "R0-p(R1"]) == 2
    assert "position" in capsys.readouterr().err
