"""Tables and the report: right columns and values, units stated, escaping, atomic self-contained files."""

import re

import numpy as np
import pandas as pd
import pytest

from mgbayes import plots, report
from tests.results import TIMES, comparison_table, fake_result, tiny_fit


@pytest.fixture(scope="module")
def fit():
    return tiny_fit()[1]


@pytest.fixture(scope="module")
def table(fit):
    return report.parameter_table(fit)


# --- parameter table --------------------------------------------------------------------------


def test_parameter_table_columns_and_rows(table, fit):
    assert list(table.columns) == ["hypothesis", "parameter", "time_h", "unit", "median", "q3%", "q97%"]
    free = ["R_el", "R_ct_0", "R_ct_rate", "CPE_dl_T", "CPE_dl_P", "noise_sigma"]
    assert list(table.parameter) == free  # time-resolved quantities only when asked
    assert set(table.hypothesis) == {"charge_transfer"}
    assert table.time_h.isna().all()
    assert (table["q3%"] <= table["median"]).all() and (table["median"] <= table["q97%"]).all()
    r_el = table.set_index("parameter").loc["R_el"]
    draws = fit["posterior"]["R_el"].values.ravel()
    assert r_el["median"] == pytest.approx(np.median(draws))
    assert r_el["q3%"] == pytest.approx(np.quantile(draws, 0.03))
    assert r_el["q97%"] == pytest.approx(np.quantile(draws, 0.97))
    assert 29 < r_el["median"] < 31  # simulated with R_el = 30 Ohm cm2


def test_units_come_from_attributes_or_the_hypothesis(table):
    units = dict(zip(table.parameter, table.unit))
    assert units == {"R_el": "Ohm cm2", "R_ct_0": "Ohm cm2", "R_ct_rate": "h-1", "CPE_dl_T": "F s^(P-1) cm-2",
                     "CPE_dl_P": "1", "noise_sigma": "1"}


def test_units_are_set_at_fit_time_and_read_from_the_attributes(fit):
    assert fit["posterior"]["R_ct"].attrs["unit"] == "Ohm cm2"  # from the element, when the fit was made
    units = report.parameter_units(fit)
    assert units["R_ct"] == "Ohm cm2" and units["C_dl"] == "F cm-2" and units["f_peak"] == "Hz"
    assert all("unit" in fit["posterior"][v].attrs for v in fit["posterior"].data_vars)
    old = fit.copy()
    posterior = old["posterior"].to_dataset()
    for da in posterior.data_vars.values():
        da.attrs.pop("unit", None)
    old["posterior"] = posterior
    assert set(report.parameter_units(old).values()) == {""}  # nothing is guessed at report time


def test_time_resolved_rows(fit):
    full = report.parameter_table(fit, time_resolved=True)
    c_dl = full[full.parameter == "C_dl"]
    assert len(c_dl) == len(TIMES)
    np.testing.assert_allclose(c_dl.time_h, TIMES)
    assert (c_dl.unit == "F cm-2").all()
    expected = fit["posterior"]["C_dl"].median(("chain", "draw")).values
    np.testing.assert_allclose(c_dl["median"], expected)
    ends = report.parameter_table(fit, time_resolved="ends", var_names=["R_ct"])
    np.testing.assert_allclose(ends.time_h, [TIMES[0], TIMES[-1]])
    assert ends["median"].iloc[1] > 5 * ends["median"].iloc[0]  # R_ct grows 10 times over 20 h


def test_several_hypotheses_and_interval_mass(fit):
    df = report.parameter_table({"A": fit, "B": fit}, prob=0.9, var_names=["R_el"])
    assert list(df.hypothesis) == ["A", "B"]
    assert list(df.columns[-2:]) == ["q5%", "q95%"]


def test_cell_parameters_get_one_row_per_cell():

    j = np.array([1.0, 2.0, 1.0, 2.0])
    tree = fake_result(j, cell_index=[0, 0, 1, 1], mean=np.ones(4), cells=["a", "b"])
    df = report.parameter_table(tree, var_names=["eta_on_z", "noise_sigma"])
    assert list(df.parameter) == ["eta_on_z[a]", "eta_on_z[b]", "noise_sigma"]
    # standardised offsets are left out by default
    assert list(report.parameter_table(tree).parameter) == ["noise_sigma"]


# --- convergence table ------------------------------------------------------------------------


def test_convergence_table(fit):
    df = report.convergence_table({"A": fit, "B": fit})
    assert list(df.columns) == ["hypothesis", "chains", "draws", "rhat_max", "ess_bulk_min", "ess_tail_min",
                                "divergences", "bfmi_min", "converged", "retried"]
    assert list(df.hypothesis) == ["A", "B"]
    row = df.iloc[0]
    assert row.chains == 2 and row.draws == fit["posterior"].sizes["draw"]  # 200, or more where R-hat or ESS fell short
    assert 0.99 < row.rhat_max < 1.2 and row.ess_bulk_min > 10 and row.bfmi_min > 0
    assert row.divergences >= 0 and isinstance(row.converged, (bool, np.bool_))
    assert bool(row.converged) == bool(fit.attrs["converged"])


# --- writing tables ---------------------------------------------------------------------------


def strip_math(text):
    return re.sub(r"\$[^$]*\$", "", text)


def test_write_table_csv_markdown_latex(table, tmp_path):
    paths = report.write_table(table, tmp_path / "out" / "parameters")
    assert {k: p.name for k, p in paths.items()} == {"csv": "parameters.csv", "md": "parameters.md",
                                                     "tex": "parameters.tex"}
    back = pd.read_csv(paths["csv"])
    assert list(back.columns) == list(table.columns)
    np.testing.assert_allclose(back["median"], table["median"])  # full precision in CSV
    md = paths["md"].read_text(encoding="utf-8").splitlines()
    assert md[0] == "| hypothesis | parameter | time_h | unit | median | q3% | q97% |"
    assert md[1].startswith("| :--- | :--- | ---: |")
    assert len(md) == 2 + len(table)
    assert md[2].startswith("| charge_transfer | R_el |  | Ω cm² | 29.9") or md[2].startswith(
        "| charge_transfer | R_el |  | Ω cm² | 30")
    tex = paths["tex"].read_text(encoding="utf-8")
    assert tex.splitlines()[0].startswith(r"\begin{tabular}{llrlrrr}")
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert tex.count(rule) == 1
    assert r"R\_ct\_rate" in tex and r"q3\%" in tex and r"time\_h" in tex
    outside_math = strip_math(tex)
    assert not re.search(r"(?<!\\)[_%]", outside_math), "unescaped _ or % outside math"
    assert r"$\Omega\,\mathrm{cm}^{2}$" in tex
    assert r"\times10^{-5}" in tex  # CPE_dl_T ~ 4e-5 in scientific notation
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["parameters.csv", "parameters.md",
                                                                   "parameters.tex"]


def test_write_table_of_a_comparison(tmp_path):
    df = comparison_table()
    paths = report.write_table(df, tmp_path / "comparison.csv")  # a suffix is dropped
    assert paths["md"].name == "comparison.md"
    tex = paths["tex"].read_text()
    assert r"indistinguishable from best" in tex and r"pareto\_k\_max" in tex and "n\\_bad\\_k" in tex
    assert pd.read_csv(paths["csv"]).shape == df.shape


def test_write_atomic_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "t.md"
    target.write_text("old")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", broken)
    with pytest.raises(OSError, match="disk full"):
        report.write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.md"]


# --- the report -------------------------------------------------------------------------------


def test_write_report_is_self_contained(fit, table, tmp_path):
    png, _ = plots.save(plots.drift(fit), tmp_path / "figures" / "drift")
    out = tmp_path / "report"
    paths = report.write_report(
        out, title="OCV drift <test>",
        sections=[
            {"heading": "Drift", "text": "First paragraph with `code`.\n\nSecond & last.",
             "tables": [table, ("Sampler diagnostics", report.convergence_table(fit))],
             "figures": [(png, "R, C and f over time")]},
            {"heading": "Empty"},
        ],
        provenance={"command": "mgbayes demo", "versions": {"mgbayes": "0.1.0", "pymc": "6.4"},
                    "data": "synthetic (simulated from charge_transfer)"},
    )
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.md"]
    page = paths["html"].read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count('src="data:image/png;base64,') == 1
    assert not re.search(r"""(src|href)=["'](?!data:)""", page), "external resource referenced"
    assert "<link" not in page and "<script" not in page
    assert page.count("<table>") == 3  # provenance + two tables
    assert "OCV drift &lt;test&gt;" in page and "Second &amp; last." in page and "<code>code</code>" in page
    assert "synthetic data" in page and "mgbayes 0.1.0; pymc 6.4" in page
    assert "Ω cm²" in page
    md = paths["md"].read_text(encoding="utf-8")
    assert md.startswith("# OCV drift <test>\n")
    assert "> These results are from **synthetic data**" in md
    assert "![R, C and f over time](../figures/drift.png)" in md
    assert "| hypothesis | parameter |" in md and "*Sampler diagnostics*" in md
    assert "## Empty" in md


def test_report_without_synthetic_data_has_no_banner(tmp_path):
    paths = report.write_report(tmp_path, title="t", sections=[{"heading": "h", "text": "x"}],
                                provenance={"data": "measured (cell 3)"})
    assert "synthetic" not in paths["md"].read_text()


def test_report_with_a_missing_figure_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        report.write_report(tmp_path, title="t", sections=[{"heading": "h", "figures": [tmp_path / "nope.png"]}])


# --- units ------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit, unicode, math", [
    ("Ohm cm2", "Ω cm²", r"$\Omega\,\mathrm{cm}^{2}$"),
    ("F cm-2", "F cm⁻²", r"$\mathrm{F}\,\mathrm{cm}^{-2}$"),
    ("uF cm-2", "µF cm⁻²", r"$\mu\mathrm{F}\,\mathrm{cm}^{-2}$"),
    ("kOhm cm2", "kΩ cm²", r"$\mathrm{k}\Omega\,\mathrm{cm}^{2}$"),
    ("F s^(P-1) cm-2", "F s^(P-1) cm⁻²", r"$\mathrm{F}\,\mathrm{s}^{P-1}\,\mathrm{cm}^{-2}$"),
    ("mA cm-2 V-1", "mA cm⁻² V⁻¹", r"$\mathrm{mA}\,\mathrm{cm}^{-2}\,\mathrm{V}^{-1}$"),
    ("1", "", ""),
    ("", "", ""),
])
def test_unit_text(unit, unicode, math):
    assert report.unit_text(unit) == unicode
    assert report.unit_text(unit, "math") == math


# --- units from where each quantity is defined (mgbayes.units, stamped on results at fit time) -------


def source_units(text, names, data_unit):
    """The units :func:`mgbayes.units.units` gives the named quantities of a hypothesis file's text."""
    import tomllib

    from mgbayes import hypotheses, units

    known = units.units(hypotheses.from_table(tomllib.loads(text), text=text), data_unit)
    return {n: known.get(n, "") for n in names}


def test_units_of_the_film_hypothesis():
    from mgbayes.hypotheses import MODELS_DIR

    text = (MODELS_DIR / "ocv_drift" / "film.toml").read_text()
    names = ["R_el", "R_ion_rate", "R_e", "R_film_0", "ln_Rion_Re", "f_e", "roughness", "permittivity", "thickness_nm", "CPE_film_P", "R_ct",
             "C_dl", "noise_sigma", "C_film", "R_film", "R_ion", "CPE_film_T", "CPE_dl_T"]
    units = source_units(text, names, "Ohm cm2")
    assert units == {"R_el": "Ohm cm2", "R_ion_rate": "h-1", "R_e": "Ohm cm2", "R_film_0": "Ohm cm2", "ln_Rion_Re": "1",
                     "f_e": "1", "roughness": "1",
                     "permittivity": "1", "thickness_nm": "nm", "CPE_film_P": "1", "R_ct": "Ohm cm2",
                     "C_dl": "F cm-2", "noise_sigma": "1", "C_film": "F cm-2", "R_film": "Ohm cm2",
                     "R_ion": "Ohm cm2", "CPE_film_T": "F s^(P-1) cm-2", "CPE_dl_T": "F s^(P-1) cm-2"}
    per_cell = source_units(text, ["R_e", "C_film", "CPE_dl_T"], "Ohm")
    assert per_cell == {"R_e": "Ohm", "C_film": "F", "CPE_dl_T": "F s^(P-1)"}


IV_TEXT = '''
name = "onset"
family = "plating_iv"
kind = "iv"
physics = "onset"
[response]
overpotential = "onset_tafel_overpotential(j, eta_on=eta_on, b=b, j_ref=j_ref) + R_s * j"
[priors]
eta_on = { dist = "normal", mu = 0.4, sigma = 0.3 }
b = { dist = "lognormal", median = 0.06, sd_log = 1.0 }
j_ref = { dist = "lognormal", median = 0.1, sd_log = 2.0 }
R_s = { dist = "lognormal", median = 0.03, sd_log = 1.0, unit = "kOhm cm2" }
[hierarchy]
eta_on = { scale = "additive", sd = { dist = "halfnormal", sigma = 0.05 } }
[noise]
model = "absolute"
'''


def test_units_of_a_kinetic_hypothesis():
    names = ["eta_on_mu", "eta_on_sd", "eta_on_z", "b", "j_ref", "R_s", "noise_sigma"]
    units = source_units(IV_TEXT, names, "V")
    assert units == {"eta_on_mu": "V", "eta_on_sd": "V", "eta_on_z": "1", "b": "V dec-1", "j_ref": "mA cm-2",
                     "R_s": "kOhm cm2", "noise_sigma": "V"}


def test_units_of_quantities_no_definition_states_come_from_their_symbols():
    from mgbayes import units

    assert {n: units.by_symbol(n, "", False) for n in ("thickness_nm", "mystery")} == {"thickness_nm": "nm", "mystery": ""}


def test_html_report_renders_markdown_and_captions_every_figure(tmp_path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    png, _ = plots.save(fig, tmp_path / "figures" / "line")
    text = ("**Verdict:** 'a' is *preferred*; see `fits/a.nc`.\n\n- **a** — one arc\n- **b** — two arcs\n\n"
            "Rule: [PSIS-LOO](https://doi.org/10.1007/s11222-016-9696-4) with __k__ < 0.7.")
    paths = report.write_report(tmp_path / "r", title="t", provenance={"data": "synthetic"},
                                sections=[{"heading": "h", "text": text, "figures": [(png, "A **line**, falling")]}])
    page = paths["html"].read_text(encoding="utf-8")
    body = re.sub(r'src="data:[^"]*"', "", page.split("<body>")[1])
    for literal in ("**", "__", "`", "](", "\n- "):
        assert literal not in body, f"literal Markdown {literal!r} in the HTML"
    assert "<strong>Verdict:</strong>" in body and "<em>preferred</em>" in body and "<code>fits/a.nc</code>" in body
    assert body.count("<li>") == 2 and '<a href="https://doi.org/' in body
    assert body.count("<figure>") == body.count("<figcaption>") == 1 and "<strong>line</strong>" in body
