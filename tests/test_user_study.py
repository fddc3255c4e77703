"""A study on one's own hypotheses, written without the optional [derived] tables, still gets its whole report."""

import re
import tomllib

import pandas as pd
import pytest

from mgbayes import cli
from tests.studies import write_small_study


@pytest.mark.slow
def test_study_without_derived_quantities_gets_a_full_report(tmp_path):
    write_small_study(tmp_path, times_h=[0.5, 5, 10, 20], title="my own cell", extra="max_refits = 0")
    for path in (tmp_path / "hyp").glob("*.toml"):
        text = re.sub(r"\n\[derived\][^\[]*", "\n", path.read_text())
        assert "derived" not in tomllib.loads(text)
        path.write_text(text)
    out = tmp_path / "out"
    assert cli.main(["run", str(tmp_path / "study.toml"), "--out", str(out)]) == 0
    figures = {p.stem for p in (out / "figures").glob("*.png")}
    assert {"ocv_drift", "ocv_comparison", "ocv_kk"} <= figures  # the drift panel shows the drifting R_ct
    page = (out / "report.html").read_text(encoding="utf-8")
    body = re.sub(r'src="data:[^"]*"', "", page.split("<body>")[1])
    assert body.count("<figure>") == body.count("<figcaption>") >= 6
    assert "**" not in body and "<strong>Verdict:</strong>" in body
    assert "Kramers-Kronig" in body and (out / "ocv_kk.csv").is_file()
    assert len(pd.read_csv(out / "ocv_kk.csv")) == 4
