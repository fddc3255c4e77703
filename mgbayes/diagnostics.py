"""Convergence checks run on every fit, with problems reported by name.

Thresholds (Vehtari et al. 2021; Betancourt 2017): R-hat < 1.01, bulk and
tail ESS >= 400 in total, no divergent
transitions, E-BFMI >= 0.3 in every chain, and chains that agree in their
mean log density (chains started in different modes that stay there).

A fit may carry a comparison's verdict (:func:`verdict_problems`) when its
R-hat is at most 1.01, it has no more than :data:`DIVERGENCES_HANDFUL`
divergent transitions, bulk and tail ESS of at least
:data:`ESS_VERDICT_MIN`, its chains agree in mean log density, and the
sampler found no better mode than the one it reports.
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
#: A verdict may rest on a fit with at most this many divergent transitions.
DIVERGENCES_HANDFUL = 5
#: ... and with at least this bulk and tail ESS (the Monte Carlo error of an ELPD is then small next to its SE).
ESS_VERDICT_MIN = 100
#: Chains whose mean log densities differ by more than this many nats (and by more than
#: :data:`LOGP_GAP_SD` standard deviations of the draws' log density) sit in different modes.
LOGP_GAP_MIN, LOGP_GAP_SD = 2.0, 1.0
#: A fit that stops once converged (``until_converged``) keeps at least this many draws in all its chains:
#: PSIS-LOO judges its importance weights by a Pareto k whose trustworthy range shrinks with fewer draws
#: S (ArviZ's threshold min(1 - 1/log10 S, 0.7): 0.67 at 1000, 0.62 at 400), while the comparison flags
#: and refits units above 0.7 whatever S; at 1000 draws the two differ by 0.03.
LOO_DRAWS_MIN = 1000


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
    kinds: list = field(default_factory=list)  # what each problem is about: rhat, ess, divergences, modes, bfmi
    rhat_max: float = np.nan
    ess_bulk_min: float = np.nan
    ess_tail_min: float = np.nan
    divergences: int = 0
    bfmi_min: float = np.nan
    draws: int = 0  # in all chains
    logp_gap: float = np.nan
    mode_gap: float = np.nan

    @property
    def ok(self):
        return not self.problems

    def enough_draws(self, planned=None, *, draws_min=0):
        """True when more draws could change no check: all pass but divergent transitions, at most a handful.

        More draws only add divergences, never remove them; what the
        handful means for a verdict is :meth:`verdict_problems`' to say.
        ``planned``: the draws (all chains) a whole run makes, when fewer
        are made so far; the divergences then count at their rate over
        ``planned``, so a run that stops early lets through no rate the
        whole run's gate would refuse. ``draws_min``: draws (all chains)
        needed besides, e.g. :data:`LOO_DRAWS_MIN` for a fit whose PSIS-LOO
        will be read.
        """
        share = min(1.0, self.draws / planned) if planned else 1.0
        return (set(self.kinds) <= {"divergences"} and self.divergences <= DIVERGENCES_HANDFUL * share
                and self.draws >= draws_min)

    def more_draws_help(self, draws_max=None):
        """True when what fails is what more draws mend: R-hat (up to :data:`RHAT_FAILED`) or ESS; divergences a handful at most.

        Divergent transitions, low E-BFMI and chains in different modes ask
        for smaller steps or another geometry, not for more of the same draws.
        With ``draws_max`` (all chains), a short ESS must reach :data:`ESS_MIN`
        by then at its present rate per draw: a small run (2 × 300 draws
        of a quick demo) whose ESS cannot is not drawn out for nothing.
        """
        ess = min(self.ess_bulk_min, self.ess_tail_min)
        reachable = "ess" not in self.kinds or not draws_max or ess * draws_max / max(self.draws, 1) >= ESS_MIN
        return (set(self.kinds) <= {"rhat", "ess", "divergences"} and bool(set(self.kinds) & {"rhat", "ess"})
                and self.rhat_max <= RHAT_FAILED and self.divergences <= DIVERGENCES_HANDFUL and reachable)

    def _add(self, kind, text):
        self.kinds.append(kind)
        self.problems.append(text)

    def failed(self, n_draws):
        """True when the chains clearly failed (see :func:`clearly_failed`)."""
        return clearly_failed(self.rhat_max, self.divergences, n_draws)

    def verdict_problems(self):
        """Short reasons why this fit cannot carry a verdict (empty when it can); see the module docstring."""
        out = []
        if not self.rhat_max <= RHAT_MAX:
            out.append(f"R-hat {self.rhat_max:.3f} > {RHAT_MAX}")
        if self.divergences > DIVERGENCES_HANDFUL:
            out.append(f"{self.divergences} divergent transitions")
        ess = min(self.ess_bulk_min, self.ess_tail_min)
        if not ess >= ESS_VERDICT_MIN:
            out.append(f"ESS {ess:.0f} < {ESS_VERDICT_MIN}")
        if self.logp_gap > 0:
            out.append(f"chains differ by {self.logp_gap:.1f} in mean log density (different modes)")
        if self.mode_gap > 0:
            out.append(f"a mode {self.mode_gap:.1f} higher in log density than the reported posterior was found")
        return out

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
    report = ConvergenceReport(name, draws=int(posterior.sizes.get("chain", 1) * posterior.sizes.get("draw", 0)))
    rhat = az.rhat(posterior)
    report.rhat_max, worst = _worst(rhat, np.max)
    if report.rhat_max > RHAT_MAX:
        report._add("rhat", f"R-hat {report.rhat_max:.3f} > {RHAT_MAX} for {worst} (chains disagree: run longer or reparameterise)")
    for method, attr in (("bulk", "ess_bulk_min"), ("tail", "ess_tail_min")):
        ess = az.ess(posterior, method=method)
        value, worst = _worst(ess, np.min)
        setattr(report, attr, value)
        if value < ESS_MIN:
            report._add("ess", f"{method} ESS {value:.0f} < {ESS_MIN} for {worst} (draw more samples)")
    stats = idata["sample_stats"].to_dataset()
    if "diverging" in stats:
        report.divergences = int(stats["diverging"].sum())
        if report.divergences:
            report._add("divergences", f"{report.divergences} divergent transitions (raise target_accept or reparameterise)")
    lp = next((stats[k] for k in ("lp", "model_logp") if k in stats), None)
    if lp is not None and lp.sizes.get("chain", 1) > 1:
        gap = float(lp.mean("draw").max() - lp.mean("draw").min())
        if gap > max(LOGP_GAP_MIN, LOGP_GAP_SD * float(lp.std("draw").max())):
            report.logp_gap = gap
            report._add("modes", f"chains differ by {gap:.1f} in mean log density: they sit in different modes "
                                   "(reparameterise, or order exchangeable parameters)")
    mode_gap = float(idata.attrs.get("mode_gap", np.nan))
    if mode_gap > 0:
        report.mode_gap = mode_gap
        report._add("modes", f"the mode search found a point {mode_gap:.1f} higher in log density than any draw: "
                               "the chains missed a better mode")
    if "energy" in stats:
        report.bfmi_min = float(az.bfmi(idata)["energy"].min())
        if report.bfmi_min < BFMI_MIN:
            report._add("bfmi", f"E-BFMI {report.bfmi_min:.2f} < {BFMI_MIN} (poor exploration of the energy)")
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


def verdict_problems(idata):
    """Reasons (short phrases) why the fit ``idata`` cannot carry a comparison's verdict; empty when it can.

    See the module docstring for the thresholds; used by :func:`mgbayes.compare.decide`.
    """
    return check(idata, idata.attrs.get("hypothesis", "fit")).verdict_problems()
