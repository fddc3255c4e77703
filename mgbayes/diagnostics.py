"""Convergence checks run on every fit, with problems reported by name.

Thresholds (Vehtari et al. 2021; Betancourt 2017): R-hat < 1.01, bulk and
tail ESS >= 400 in total, no divergent
transitions, E-BFMI >= 0.3 in every chain.
"""

import warnings
from dataclasses import dataclass, field

import arviz as az
import numpy as np

RHAT_MAX = 1.01
ESS_MIN = 400
BFMI_MIN = 0.3
#: A fit has clearly failed (not just fallen short) above this R-hat or this share of divergent draws.
RHAT_FAILED, DIVERGENT_FAILED = 1.05, 0.01


def clearly_failed(rhat_max, divergences, n_draws):
    """R-hat above :data:`RHAT_FAILED` or divergences in more than :data:`DIVERGENT_FAILED` of ``n_draws`` draws."""
    return rhat_max > RHAT_FAILED or divergences > DIVERGENT_FAILED * n_draws


def sampled(posterior):
    """Names of the sampled parameters of a posterior Dataset (not its derived or resolved quantities)."""
    return [v for v, da in posterior.data_vars.items() if da.attrs.get("kind") not in ("derived", "resolved")]


class ConvergenceWarning(UserWarning):
    """The sampler's output fails a convergence check."""


@dataclass
class ConvergenceReport:
    """Result of :func:`check`: a list of named problems (empty when fine)."""

    name: str
    problems: list = field(default_factory=list)
    rhat_max: float = np.nan
    ess_bulk_min: float = np.nan
    ess_tail_min: float = np.nan
    divergences: int = 0
    bfmi_min: float = np.nan

    @property
    def ok(self):
        return not self.problems

    def failed(self, n_draws):
        """True when the chains clearly failed (see :func:`clearly_failed`)."""
        return clearly_failed(self.rhat_max, self.divergences, n_draws)

    def text(self):
        head = (f"{self.name}: R-hat max {self.rhat_max:.3f}, ESS bulk min {self.ess_bulk_min:.0f}, "
                f"ESS tail min {self.ess_tail_min:.0f}, divergences {self.divergences}, "
                f"E-BFMI min {self.bfmi_min:.2f}")
        if self.ok:
            return head + " — converged."
        return head + " — PROBLEMS: " + "; ".join(self.problems)


def _worst(dataset, reduce):
    """(value, variable) of the worst entry over all variables of ``dataset``."""
    best = (np.nan, "")
    for name, da in dataset.data_vars.items():
        values = np.asarray(da.values, dtype=float)
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        v = reduce(values)
        if np.isnan(best[0]) or reduce([v, best[0]]) == v:
            best = (float(v), name)
    return best


def check(idata, name="fit", *, var_names=None):
    """Check R-hat, bulk/tail ESS, divergences and E-BFMI of ``idata``.

    Only the sampled (free) parameters are checked; derived quantities
    inherit their convergence.
    """
    posterior = idata["posterior"].to_dataset()
    posterior = posterior[var_names or sampled(posterior)]
    report = ConvergenceReport(name)
    rhat = az.rhat(posterior)
    report.rhat_max, worst = _worst(rhat, np.max)
    if report.rhat_max > RHAT_MAX:
        report.problems.append(f"R-hat {report.rhat_max:.3f} > {RHAT_MAX} for {worst} (chains disagree: run longer or reparameterise)")
    for method, attr in (("bulk", "ess_bulk_min"), ("tail", "ess_tail_min")):
        ess = az.ess(posterior, method=method)
        value, worst = _worst(ess, np.min)
        setattr(report, attr, value)
        if value < ESS_MIN:
            report.problems.append(f"{method} ESS {value:.0f} < {ESS_MIN} for {worst} (draw more samples)")
    stats = idata["sample_stats"].to_dataset()
    if "diverging" in stats:
        report.divergences = int(stats["diverging"].sum())
        if report.divergences:
            report.problems.append(f"{report.divergences} divergent transitions (raise target_accept or reparameterise)")
    if "energy" in stats:
        report.bfmi_min = float(az.bfmi(idata)["energy"].min())
        if report.bfmi_min < BFMI_MIN:
            report.problems.append(f"E-BFMI {report.bfmi_min:.2f} < {BFMI_MIN} (poor exploration of the energy)")
    return report


def warn_if_failed(idata, name):
    """Check a refit (exact LOO, leave-future-out) and warn by name when its chains clearly failed.

    Refits feed ELPD values, not reported posteriors, so only a clear
    failure (:meth:`ConvergenceReport.failed`) is worth a warning.
    """
    report = check(idata, name)
    n_draws = idata["posterior"].sizes["chain"] * idata["posterior"].sizes["draw"]
    if report.failed(n_draws):
        warnings.warn(report.text(), ConvergenceWarning, stacklevel=2)
    return report
