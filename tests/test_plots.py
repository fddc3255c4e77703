"""Figures: data and bands are on the axes, labels carry units, files are written atomically."""

import functools
from pathlib import Path
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.image import imread

from mgbayes import compare, data, hypotheses, inference, plots, simulate
from tests.results import TIMES, comparison_table, fake_result, tiny_fit
N_FREQ = len(simulate.frequency_grid(per_decade=4))


@pytest.fixture(scope="module")
def fit():
    return tiny_fit()[1]


@pytest.fixture(scope="module")
def series():
    return tiny_fit()[0]


def by_gid(ax, gid, kind="lines"):
    return [a for a in getattr(ax, kind) if a.get_gid() == gid]


def test_fixture_has_the_expected_layout(fit):
    assert fit["observed_data"]["Z"].shape == (len(TIMES), N_FREQ, 2)
    assert {"Z", "Z_mean"} <= set(fit["posterior_predictive"].data_vars)


# --- Nyquist and Bode -----------------------------------------------------------------------


def test_nyquist_of_a_fit_draws_data_median_and_bands_for_first_middle_last(fit):
    fig = plots.nyquist(fit)
    ax = fig.axes[0]
    data_lines = by_gid(ax, "data")
    medians = by_gid(ax, "median")
    assert len(data_lines) == len(medians) == 3
    for line in data_lines + medians:
        assert len(line.get_xdata()) == N_FREQ
    assert len(by_gid(ax, "band-model", "patches")) == 3
    assert len(by_gid(ax, "band-predictive", "patches")) == 3
    # the first and last spectrum are drawn; data in kOhm cm2 match the observed values
    z = fit["observed_data"]["Z"]
    last = data_lines[-1]
    np.testing.assert_allclose(last.get_xdata(), z.isel(time=-1).sel(part="re").values * 1e-3)
    np.testing.assert_allclose(last.get_ydata(), -z.isel(time=-1).sel(part="im").values * 1e-3)
    assert "\\Omega" in ax.get_xlabel() and "cm}^{2}" in ax.get_xlabel() and "Z'" in ax.get_xlabel()
    assert ax.get_aspect() == 1.0
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "t = 0 h" in texts and "t = 20 h" in texts


def test_nyquist_band_surrounds_the_median(fit):
    ax = plots.nyquist(fit, times=[20], predictive=False).axes[0]
    (band,) = by_gid(ax, "band-model", "patches")
    (median,) = by_gid(ax, "median")
    path = band.get_path()
    inside = path.contains_points(np.c_[median.get_xdata(), median.get_ydata()][1:-1], radius=1e-9)
    assert inside.mean() > 0.5  # a thin tube: points on the median are on or inside its outline


def test_nyquist_of_data_alone_has_no_model(series):
    fig = plots.nyquist(series, times=[0, 20])
    ax = fig.axes[0]
    assert len(by_gid(ax, "data")) == 2 and not by_gid(ax, "median") and not ax.patches
    one = plots.nyquist(series[0]).axes[0]
    assert len(by_gid(one, "data")) == 1


def test_nyquist_draws_into_a_given_axes(fit):
    fig = matplotlib.figure.Figure()
    ax = fig.add_subplot()
    assert plots.nyquist(fit, ax=ax) is fig
    assert by_gid(ax, "data")


def test_bode_has_modulus_and_phase_with_bands(fit):
    fig = plots.bode(fit, times="all")
    ax_mod, ax_ph = fig.axes[:2]
    assert ax_mod.get_xscale() == "log" and ax_mod.get_yscale() == "log" and ax_ph.get_yscale() == "linear"
    for ax in (ax_mod, ax_ph):
        assert len(by_gid(ax, "data")) == len(TIMES)
        assert all(len(line.get_xdata()) == N_FREQ for line in by_gid(ax, "data"))
        assert len(by_gid(ax, "band-model", "collections")) == len(TIMES)
    z = fit["observed_data"]["Z"].isel(time=0)
    phase = -np.degrees(np.arctan2(z.sel(part="im").values, z.sel(part="re").values))
    np.testing.assert_allclose(by_gid(ax_ph, "data")[0].get_ydata(), phase)
    assert "Hz" in ax_ph.get_xlabel() and "deg" in ax_ph.get_ylabel()


# --- drift ----------------------------------------------------------------------------------


def test_drift_overlays_hypotheses_and_skips_what_they_lack(fit):
    other = fit.copy()
    other["posterior"] = fit["posterior"].to_dataset().drop_vars("C_dl")
    assert "C_dl" in fit["posterior"]  # the original is untouched
    fig = plots.drift({"A": fit, "B": other}, quantities=("R_arc", "C_dl", "f_peak", "not_there"))
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 3
    r_ax, c_ax, f_ax = axes
    assert len(by_gid(r_ax, "median")) == 2 and len(by_gid(c_ax, "median")) == 1
    assert all(len(line.get_xdata()) == len(TIMES) for line in by_gid(r_ax, "median"))
    assert r_ax.get_yscale() == "log" and f_ax.get_yscale() == "log"  # R grows 10 times, f falls 10 times
    assert c_ax.get_yscale() == "linear"
    assert "mu" in c_ax.get_ylabel()  # shown in uF cm-2
    median_c = by_gid(c_ax, "median")[0].get_ydata()
    expected = fit["posterior"]["C_dl"].median(("chain", "draw")).values * 1e6
    np.testing.assert_allclose(median_c, expected, rtol=1e-9)
    assert all(ax.get_xlabel().startswith("$t$") for ax in axes)


def test_drift_without_any_quantity_raises(fit):
    with pytest.raises(ValueError, match="none of"):
        plots.drift(fit, quantities=("nope",))


# --- fake I-V and transient results (the layout of mgbayes.inference.fit) ----------------------


@pytest.fixture(scope="module")
def iv_case():
    j = np.tile([0.3, 1.0, 3.0, 10.0], 3)
    cells = np.repeat(["a", "b", "c"], 4)
    index = np.repeat([0, 1, 2], 4)
    eta = 0.5 + 0.1 * np.log10(j) + 0.01 * index
    curve = data.IVCurve(current_density_mA_cm2=j, overpotential_V=eta, cell=cells)
    tafel = fake_result(j, cell_index=index, mean=eta, cells=["a", "b", "c"], name="tafel")
    tunnel = fake_result(j, cell_index=index, mean=0.45 + 0.03 * j, name="tunnelling", seed=1)
    return curve, {"tafel": tafel, "tunnelling": tunnel}


def test_iv_panels_per_hypothesis_with_bands_per_cell(iv_case):
    curve, results = iv_case
    fig = plots.iv(curve, results)
    tafel_ax, tunnel_ax = [ax for ax in fig.axes if ax.get_visible()]
    assert tafel_ax.get_title() == "tafel" and tafel_ax.get_xscale() == "log"
    # cell-level parameters: one band per cell; none: one shared band
    assert len(by_gid(tafel_ax, "median")) == 3 and len(by_gid(tunnel_ax, "median")) == 1
    assert all(len(line.get_xdata()) == 4 for line in by_gid(tafel_ax, "median") + by_gid(tunnel_ax, "median"))
    assert np.all(np.diff(by_gid(tafel_ax, "median")[0].get_xdata()) > 0)  # sorted by j
    data_lines = by_gid(tafel_ax, "data")
    assert len(data_lines) == 3 and sum(len(line.get_xdata()) for line in data_lines) == 12
    np.testing.assert_allclose(data_lines[0].get_ydata(), curve.overpotential_V[:4] * 1e3)
    assert "mV" in tafel_ax.get_ylabel() and "mA" in tafel_ax.get_xlabel()


def test_iv_overlays_hypotheses_for_one_cell():
    j = np.array([0.3, 1.0, 3.0, 10.0])
    eta = 0.5 + 0.1 * np.log10(j)
    curve = data.IVCurve(current_density_mA_cm2=j, overpotential_V=eta)
    fig = plots.iv(curve, {"a": fake_result(j, mean=eta), "b": fake_result(j, mean=eta + 0.02, seed=3)})
    (ax,) = fig.axes
    assert len(by_gid(ax, "median")) == 2 and len(by_gid(ax, "band-model", "collections")) == 2
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= {"a", "b", "data"}


def test_transients_one_panel_per_current_density():
    t_h = np.linspace(0, 3, 40)
    levels = [0.3, 1.0, 3.0]
    trs = [data.Transient(time_s=t_h * 3600, overpotential_V=0.09 + 0.4 / (1 + np.exp((t_h - 1) / 0.1)),
                          current_density_mA_cm2=j) for j in levels]
    t = np.tile(t_h, 3)
    j = np.repeat(levels, t_h.size)
    index = np.repeat([0, 1, 2], t_h.size)
    mean = np.concatenate([tr.overpotential_V for tr in trs])
    fig = plots.transients(trs, {"time": fake_result(j, t, index, mean=mean)})
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 3
    for ax in axes:
        assert len(by_gid(ax, "data")) == 1 and len(by_gid(ax, "median")) == 1
        assert len(by_gid(ax, "median")[0].get_xdata()) == t_h.size
        assert ax.get_xlabel().startswith("$t$")
    assert "0.3" in axes[0].get_title()
    np.testing.assert_allclose(by_gid(axes[1], "data")[0].get_ydata(), trs[1].overpotential_V * 1e3)


# --- comparison, Pareto k, forest -------------------------------------------------------------




def test_comparison_orders_by_rank_and_marks_differences():
    fig = plots.comparison(comparison_table())
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["charge_transfer", "mixed", "film"]  # best at the top (highest y)
    assert list(ax.get_yticks()) == [2, 1, 0]
    (diff,) = ax.containers  # on the difference scale: ELPD - best ± dSE, the best at 0
    np.testing.assert_allclose(diff[0].get_xdata(), [0.0, -2.1, -69.3])
    np.testing.assert_allclose(diff[2][0].get_segments()[2][:, 0], [-69.3 - 8.1, -69.3 + 8.1])
    assert ax.get_xlim()[0] < -69.3 - 8.1 and ax.get_xlim()[1] > 0
    right = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert right[0].startswith("best") and "tied" in right[1] and "k > 0.7" in right[1] and "worse" in right[2]
    assert "-4650.2 ± 31" in right[2].replace("−", "-")  # the absolute ELPD is still given
    assert "nat" in ax.get_xlabel() and "best" in ax.get_xlabel()


def test_comparison_one_panel_per_experiment():
    table = pd.concat([comparison_table("a"), comparison_table("b")])
    fig = plots.comparison(table)
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]
    assert titles == ["a", "b"]


def test_pareto_k_of_an_impedance_fit_against_frequency(fit):
    import arviz as az

    fig = plots.pareto_k(fit)
    ax = fig.axes[0]
    (points,) = by_gid(ax, "k", "collections")
    assert points.get_offsets().shape == (len(TIMES) * N_FREQ, 2)
    assert ax.get_xscale() == "log" and "Hz" in ax.get_xlabel()
    assert any(np.allclose(line.get_ydata(), 0.7) for line in ax.lines)
    loo = compare.loo(fit, unit="point")  # Re and Im of a frequency point are one LOO unit
    np.testing.assert_allclose(np.sort(points.get_offsets()[:, 1]), np.sort(loo.pareto_k.values.ravel()))
    # ArviZ's own LOO (Re and Im apart) works too: the worse of the two per point
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per_value = az.loo(fit, pointwise=True)
    again = by_gid(plots.pareto_k(per_value).axes[0], "k", "collections")[0].get_offsets()
    np.testing.assert_allclose(np.sort(again[:, 1]), np.sort(per_value.pareto_k.max("part").values.ravel()))


def test_forest_rows_per_hypothesis_and_time(fit):
    fig = plots.forest({"A": fit, "B": fit}, ["R_el", "C_dl"])
    r_ax, c_ax = fig.axes
    assert [t.get_text() for t in r_ax.get_yticklabels()] == ["A", "B"]
    assert len(c_ax.get_yticks()) == 2 * len(TIMES)
    assert "cm}^{2}" in r_ax.get_xlabel() and "mu" in c_ax.get_xlabel()
    med = fit["posterior"]["R_el"].median().item()
    assert r_ax.containers[0][0].get_xdata()[0] == pytest.approx(med)


# --- style and saving ---------------------------------------------------------------------------


def test_plots_leave_global_rcparams_alone(fit):
    before = dict(matplotlib.rcParams)
    plots.nyquist(fit)
    after = dict(matplotlib.rcParams)
    assert {k for k in before if before[k] != after[k]} == set()


def test_style_fonts_are_readable_and_palette_is_okabe_ito():
    with plots.style():
        sizes = [matplotlib.rcParams[k] for k in ("font.size", "axes.labelsize", "xtick.labelsize",
                                                   "ytick.labelsize", "legend.fontsize")]
        cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    assert all(float(s) >= 9 for s in sizes)
    assert set(cycle) <= set(plots.OKABE_ITO.values())


def test_save_writes_png_and_pdf_atomically(fit, tmp_path):
    fig = plots.nyquist(fit)
    png, pdf = plots.save(fig, tmp_path / "figs" / "nyquist")
    assert png.name == "nyquist.png" and pdf.name == "nyquist.pdf"
    image = imread(png)
    assert image.std() > 0.01  # not a blank canvas
    width, height = fig.get_size_inches()
    assert image.shape[:2] == (round(height * 200), round(width * 200))
    assert pdf.read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["nyquist.pdf", "nyquist.png"]
    # a suffix given by mistake is dropped, and the same figure gives the same PDF
    again = plots.save(fig, tmp_path / "figs" / "nyquist.png")
    assert again == (png, pdf)
    assert pdf.read_bytes() == again[1].read_bytes()


def test_failed_save_leaves_no_temporary_file(tmp_path, monkeypatch):
    fig = matplotlib.figure.Figure()
    fig.add_subplot().plot([1, 2], [3, 4])
    (tmp_path / "old.png").write_bytes(b"old")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("os.replace", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        plots.save(fig, tmp_path / "old")
    assert [p.name for p in tmp_path.iterdir()] == ["old.png"]
    assert (tmp_path / "old.png").read_bytes() == b"old"


@pytest.mark.parametrize("name, symbol", [("R_ct", r"$R_{\mathrm{ct}}$"), ("eta_on", r"$\eta_{\mathrm{on}}$"),
                                          ("CPE_dl_P", r"$P_{\mathrm{CPE,dl}}$"), ("G0", r"$G_{\mathrm{0}}$"),
                                          ("noise_sigma", "noise_sigma")])
def test_symbols(name, symbol):
    assert plots._symbol(name) == symbol


def test_pareto_k_of_a_loo_result_places_iv_points_at_their_current_density(iv_case):
    from types import SimpleNamespace

    curve, results = iv_case
    k = xr.DataArray(np.linspace(0.1, 0.9, 12), dims=("point",), coords={"point": np.arange(12)})
    fig = plots.pareto_k(SimpleNamespace(pareto_k=k, good_k=0.7), idata=results["tafel"])
    ax = fig.axes[0]
    (points,) = by_gid(ax, "k", "collections")
    np.testing.assert_allclose(points.get_offsets()[:, 0], curve.current_density_mA_cm2)
    assert ax.get_xscale() == "log" and "mA" in ax.get_xlabel()
    (bad,) = by_gid(ax, "k-bad", "collections")
    assert len(bad.get_offsets()) == int((k > 0.7).sum())
    assert ax.get_title(loc="left").startswith(f"{int((k > 0.7).sum())} of 12")


def test_new_figures_of_a_fit(fit, series):
    assert plots.prior_posterior(fit).axes and plots.rank(fit).axes
    fig = plots.pair(fit, most=3)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 6 and by_gid(fig.axes[3], "draws")
    fig = plots.residuals(fit)
    assert len(by_gid(fig.axes[0], "residual")) == len(by_gid(fig.axes[1], "residual")) >= 1
    fig = plots.kk_residuals(series)
    assert fig.axes[0].lines and fig.axes[0].get_xscale() == "log"


def test_drift_falls_back_to_drifting_parameters_and_names_formulas(fit):
    import copy

    assert plots.drift_quantities(fit) == [q for q in plots.DRIFT_QUANTITIES if q in fit["posterior"]]
    bare = copy.deepcopy(fit)
    posterior = bare["posterior"].to_dataset().drop_vars([q for q in plots.DRIFT_QUANTITIES if q in bare["posterior"]])
    bare["posterior"] = posterior
    drifting = plots.drift_quantities(bare)
    assert drifting and all("time" in bare["posterior"][q].dims for q in drifting)
    assert plots.drift(bare).axes
    if "R_arc" in fit["posterior"]:
        labels = [t.get_text() for ax in plots.drift({"a": fit}, quantities=["R_arc"]).axes
                  for t in (ax.get_legend().get_texts() if ax.get_legend() else [])]
        assert any("R_arc = " in text for text in labels)
