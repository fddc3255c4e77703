"""Results for tests of tables and figures: one small real fit, fake I-V/transient results, a comparison table."""

import functools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from mgbayes import hypotheses, inference, simulate

TIMES = np.linspace(0.0, 20.0, 6)


@functools.cache
def tiny_fit():
    """One small charge-transfer fit on synthetic spectra, shared by the tests of figures and tables."""
    h = hypotheses.load(Path(__file__).parent / "data" / "single_arc.toml")
    p = {"R_el": 30.0, "R_ct_0": 2e4, "R_ct_rate": 0.45, "CPE_dl_T": 4e-5, "CPE_dl_P": 0.9}
    s = simulate.spectra(h, p, times_h=TIMES, frequency=simulate.frequency_grid(per_decade=4),
                         area_cm2=1.13, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = inference.fit(h, s, draws=200, tune=200, chains=2, random_seed=1)
    return s, idata



def fake_result(j, t=None, cell_index=None, *, mean, cells=None, name="h", seed=0, n_chain=2, n_draw=50):
    """A DataTree laid out like an I-V (t=None) or transient fit: eta_mean draws around ``mean``."""
    rng = np.random.default_rng(seed)
    n = len(j)
    cell_index = np.zeros(n, int) if cell_index is None else np.asarray(cell_index)
    draws = mean[None, None, :] * (1 + 0.02 * rng.standard_normal((n_chain, n_draw, 1)))
    coords = {"chain": np.arange(n_chain), "draw": np.arange(n_draw), "point": np.arange(n)}
    posterior = {"noise_sigma": (("chain", "draw"), np.abs(rng.normal(0.01, 0.001, (n_chain, n_draw))))}
    if cells is not None:
        coords["cell"] = list(cells)
        posterior["eta_on_z"] = (("chain", "draw", "cell"), rng.standard_normal((n_chain, n_draw, len(cells))))
    constant = {"j": ("point", np.asarray(j, float)), "cell_index": ("point", cell_index)}
    if t is not None:
        constant["t"] = ("point", np.asarray(t, float))
    tree = xr.DataTree.from_dict({
        "posterior": xr.Dataset(posterior, coords={k: v for k, v in coords.items() if k != "point"}),
        "posterior_predictive": xr.Dataset({"eta": (("chain", "draw", "point"), draws),
                                            "eta_mean": (("chain", "draw", "point"), draws)}, coords=coords),
        "observed_data": xr.Dataset({"eta": ("point", mean)}, coords={"point": coords["point"]}),
        "constant_data": xr.Dataset(constant),
    })
    tree.attrs.update(hypothesis=name, data_unit="V")
    return tree


def comparison_table(experiment="ocv_drift"):
    return pd.DataFrame({
        "experiment": experiment, "hypothesis": ["film", "charge_transfer", "mixed"], "rank": [3, 1, 2],
        "elpd_loo": [-4650.2, -4580.9, -4583.0], "se": [31.0, 30.2, 30.5], "elpd_diff": [69.3, 0.0, 2.1],
        "dse": [8.1, 0.0, 1.5], "weight": [0.0, 0.8, 0.2], "p_loo": [8.0, 6.0, 9.1],
        "pareto_k_max": [0.5, 0.3, 0.8], "n_bad_k": [0, 0, 2],
        "verdict": ["worse than best", "best", "indistinguishable from best"],
    })
