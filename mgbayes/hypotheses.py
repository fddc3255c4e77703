"""Hypotheses as data: load and check ``models/**/*.toml``.

A hypothesis file declares one physical explanation of one kind of measurement::

    name = "charge_transfer"
    family = "ocv_drift"            # hypotheses of one family are compared with each other
    kind = "impedance"              # impedance | iv | transient
    title = "Charge-transfer dominated"
    physics = "R_ct grows as reaction sites are lost; the arc is a double layer."

    [circuit]                       # kind = "impedance"
    series = "R_el"                 # per cell
    electrode = "p(R_ct,CPE_dl)"    # per electrode; a symmetric cell has two

    [response]                      # kind = "iv" or "transient"
    overpotential = "tunnelling_overpotential(j, G0=G0, gamma=gamma)"

    [drift]                         # how quantities change with time t [h]
    R_ct = "linear"                 # see mgbayes.drift

    [transform]                     # quantities defined by formulas
    CPE_film_T = "permittivity * EPS0_F_cm / (thickness_nm * 1e-7)"

    [priors]                        # see mgbayes.priors
    R_ct = { dist = "lognormal", median = 2e4, sd_log = 1.5 }

    [hierarchy]                     # cell-to-cell scatter (partial pooling)
    eta_on = { scale = "additive", sd = { dist = "halfnormal", sigma = 0.05 } }
    # centred = true samples each cell's value itself (for data that fix it
    # cell by cell); the default samples standardised offsets X_z (weak data)

    [noise]
    model = "proportional"          # proportional | student_t | absolute | composite | composite_student_t
    sigma = { dist = "halfnormal", sigma = 0.05 }

    [coordinates]                   # optional: how NUTS moves, not what the model says
    sampled = ["u", "v"]            # sampled instead of the parameters defined below
    a = "exp(u)"                    # formulas in order: of the sampled names, earlier
    b = "exp(v - u) / t_max"        # formulas, constants, t_max and t_min (latest, earliest time, h)

    [sampler]                       # optional: what NUTS needs for this posterior
    target_accept = 0.97            # at least this acceptance (smaller steps) in every fit and refit

``[sampler]`` states a property of the posterior's shape, measured, not a
setting of one run: its ``target_accept`` is a floor that every fit and
exact refit of the hypothesis uses (a study or call asking for more gets
more), so a posterior known to need small steps does not first spend a
run at a step size it diverges at (``models/plating_iv/two_channel.toml``).

``[coordinates]`` samples some parameters through other variables where
their posterior has a shape NUTS cannot follow (a wall that is exponential
in the parameters' own coordinates). It leaves the model unchanged: the
parameters it defines (``a``, ``b``: as many as there are sampled names,
each with its prior in ``[priors]``) keep that prior, and mgbayes adds the
log-determinant of the Jacobian of the map, so the posterior is the one
sampled without it. The other formulas are intermediate steps.

Noise models (standard deviation of each observed value, Re and Im of an
impedance alike): ``proportional`` sigma·|Z|; ``absolute`` sigma;
``student_t`` sigma·|Z| with Student-t errors (``nu`` degrees of freedom);
``composite`` sqrt(floor² + (proportional·|Z|)²), with ``floor`` (data
units) and ``proportional`` each sampled separately for Re and Im;
``composite_student_t`` the same scale with Student-t errors. The default
``floor`` prior is centred on 1e-3 × the data's median |Z| (1e-3 of the
data's spread for other kinds).

    [derived]                       # reported with credible intervals
    C_dl = { expr = "cpe_capacitance(R_ct, CPE_dl_T, CPE_dl_P)", unit = "F cm-2" }

Values are in the units of the data: Ohm·cm² and F·cm⁻² when the spectra
carry an electrode area, V and mA·cm⁻² for current–overpotential data.
Every name used must be a circuit parameter, a drift law parameter, a
transform, or have a prior; anything else is an error naming the file.
"""

import tomllib
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import drift, expressions, resources
from .backend import is_tensor, namespace
from .circuits import Circuit
from .errors import CircuitError, HypothesisError
from .files import check_name
from .priors import Prior

#: kind → (observed variable name, data inputs available to formulas)
KINDS = {
    "impedance": ("Z", ("t",)),
    "iv": ("eta", ("j",)),
    "transient": ("eta", ("t", "j")),
}
NOISE_MODELS = {
    "proportional": ("sigma",),
    "student_t": ("sigma", "nu"),
    "absolute": ("sigma",),
    "composite": ("floor", "proportional"),
    "composite_student_t": ("floor", "proportional", "nu"),
}
#: Noise parameters sampled once per part (Re, Im) of an impedance.
PER_PART = ("floor", "proportional")
DEFAULT_NOISE_PRIORS = {
    "proportional": {"sigma": Prior("halfnormal", {"sigma": 0.05})},
    "student_t": {"sigma": Prior("halfnormal", {"sigma": 0.05}), "nu": Prior("lognormal", {"median": 8.0, "sd_log": 1.0})},
    # lognormal, not halfnormal: with cell-to-cell scatter and one point per cell a
    # halfnormal noise scale lets the likelihood grow without bound as sigma -> 0
    "absolute": {"sigma": Prior("lognormal", {"median": 0.02, "sd_log": 1.0})},
    # floor: None = centred on the data (see Hypothesis.prior_table)
    "composite": {"floor": None, "proportional": Prior("halfnormal", {"sigma": 0.05})},
    "composite_student_t": {"floor": None, "proportional": Prior("halfnormal", {"sigma": 0.05}),
                            "nu": Prior("lognormal", {"median": 8.0, "sd_log": 1.0})},
}
_KEYS = {"name", "family", "kind", "title", "physics", "circuit", "response", "drift",
         "transform", "priors", "hierarchy", "noise", "derived", "coordinates", "sampler"}
#: Data quantities that ``[coordinates]`` formulas may use besides the sampled names (see :func:`coordinate_inputs`).
COORDINATE_INPUTS = ("t_max", "t_min")
#: At most this many sampled coordinates in one hypothesis (the Jacobian's determinant is written out)
MAX_COORDINATES = 3

#: Where the shipped hypotheses live (the repository's ``models/``; package data in a wheel).
MODELS_DIR = resources.models_dir()


class HierarchyNotice(UserWarning):
    """A hypothesis's ``[hierarchy]`` was dropped because the data hold one cell."""


@dataclass
class Hypothesis:
    """One hypothesis, checked; see the module docstring for the file format."""

    name: str
    family: str  # the measurement it explains; hypotheses of one family are compared
    kind: str
    title: str
    physics: str
    text: str = ""
    path: str | None = None
    series: Circuit | None = None
    electrode: Circuit | None = None
    electrodes: int | None = None
    response: str | None = None
    drift: dict = field(default_factory=dict)
    transform: dict = field(default_factory=dict)
    priors: dict = field(default_factory=dict)
    hierarchy: dict = field(default_factory=dict)
    noise_model: str = "proportional"
    noise_priors: dict = field(default_factory=dict)
    derived: dict = field(default_factory=dict)
    #: other experiments fitted jointly (outside evidence as data): :class:`mgbayes.inference.Evidence`
    evidence: tuple = field(default=(), repr=False)
    #: hard bounds on named quantities from outside information: name -> {"lower"/"upper": value}
    bounds: dict = field(default_factory=dict)
    #: the sampler's coordinates: {"sampled": (names...), "formulas": {name: text}} or empty
    coordinates: dict = field(default_factory=dict)
    #: NUTS acceptance every fit of this hypothesis asks for at least (``[sampler] target_accept``), or None
    target_accept: float | None = None

    # -- structure ---------------------------------------------------------
    @property
    def observed_name(self):
        return KINDS[self.kind][0]

    @property
    def inputs(self):
        return KINDS[self.kind][1]

    @property
    def circuit_parameters(self):
        """Circuit parameters (series first), with the element that declares each."""
        table = {}
        for circuit in (self.series, self.electrode):
            if circuit is not None:
                table.update(circuit.parameters)
        return table

    def needed(self):
        """Names the forward model reads directly."""
        if self.kind == "impedance":
            return list(self.circuit_parameters)
        _, names = expressions.parse(self.response, where=self._where("response.overpotential"))
        return [n for n in names if n not in self.inputs]

    def free_parameters(self):
        """Names of the sampled parameters, in resolution order.

        Hierarchical parameters ``X`` contribute ``X_mu``, ``X_sd`` and
        ``X_z`` (one standardised offset per cell).
        """
        order, visiting = [], set()

        def visit(name, chain):
            if name in order or name in self.inputs:
                return
            if name in visiting:
                raise HypothesisError(f"{self._where('transform')}: circular definition {' -> '.join(chain + [name])}")
            visiting.add(name)
            if name in self.transform:
                for n in expressions.parse(self.transform[name], where=self._where(f"transform.{name}"))[1]:
                    visit(n, chain + [name])
            elif name in self.drift:
                for n in drift.parameter_names(name, self.drift[name]):
                    visit(n, chain + [name])
            elif name in self.hierarchy:
                order.extend([f"{name}_mu", f"{name}_sd", f"{name}_z"])
            else:
                order.append(name)
            visiting.discard(name)

        for name in self.needed():
            visit(name, [])
        known = self._resolvable() | set(order)
        for name, spec in self.derived.items():
            for n in expressions.parse(spec["expr"], where=self._where(f"derived.{name}"))[1]:
                if n not in known:
                    raise HypothesisError(
                        f"{self._where(f'derived.{name}')}: {spec['expr']!r} uses {n!r}, which the model does not define"
                    )
            known.add(name)
        return order

    def replaced(self):
        """Parameters sampled through ``[coordinates]`` (their prior stays; they are not sampled themselves)."""
        formulas = self.coordinates.get("formulas", {})
        return [n for n in self.free_parameters() if n in formulas]

    def _resolvable(self):
        names = set(self.needed()) | set(self.transform) | set(self.drift) | set(self.inputs)
        for name, law in self.drift.items():
            names.update(drift.parameter_names(name, law))
        for name in self.transform.values():
            names.update(expressions.parse(name)[1])
        return names

    def _where(self, key):
        return f"{self.path or self.name} [{key}]"

    # -- priors ------------------------------------------------------------
    def prior_table(self, *, frequency=None, impedance=None, t_span=1.0):
        """Complete priors of every free parameter, data-based defaults included.

        Parameters
        ----------
        frequency, impedance : array, optional
            Data used to centre the default priors of circuit parameters
            (first and last spectrum for drift laws' start and end values).
        t_span : float
            Time span of the data in hours, for drift-law defaults.
        """
        guesses = self._guesses(frequency, impedance)
        table = {}
        for name in self.free_parameters():
            table[name] = self._prior_of(name, guesses, t_span)
        for key, prior in self.noise_priors.items():
            table[f"noise_{key}"] = prior if prior is not None else _default_floor(impedance)
        return table

    def _guesses(self, frequency, impedance):
        if frequency is None or self.kind != "impedance":
            return {}, {}
        z = np.atleast_2d(impedance)
        circuits = [c for c in (self.series, self.electrode) if c is not None]
        first, last = ({name: value for c in circuits for name, value in c.guesses(frequency, spectrum).items()}
                       for spectrum in (z[0], z[-1]))
        return first, last

    def _default_prior(self, base, guesses, which):
        param = self.circuit_parameters.get(base)
        if param is None:
            raise HypothesisError(
                f"{self._where('priors')}: parameter {base!r} has no prior; add one, e.g. "
                f"{base} = {{ dist = \"lognormal\", median = 1.0, sd_log = 1 }}"
            )
        if np.isfinite(param.upper):
            return Prior("beta", {"alpha": 10.0, "beta": 1.5})
        first, last = guesses if guesses else ({}, {})
        centre = (last if which == "inf" else first).get(base, 1.0)
        return Prior("lognormal", {"median": centre, "sd_log": param.log_sd})

    def _prior_of(self, name, guesses, t_span):
        if name in self.priors:
            return self.priors[name]
        for base, spec in self.hierarchy.items():
            if name == f"{base}_mu":  # the prior of the parameter itself (a drift law's, where it has one)
                return self._prior_of(base, guesses, t_span)
            if name == f"{base}_sd":
                return spec["sd"]
            if name == f"{base}_z":
                return Prior("normal", {"mu": 0.0, "sigma": 1.0})
        for base, law in self.drift.items():
            for suffix in drift.LAWS[law][1]:
                if name == f"{base}_{suffix}":
                    if suffix in drift.VALUE_SUFFIXES:
                        return self.priors.get(base) or self._default_prior(base, guesses, suffix)
                    return drift.default_time_prior(suffix, t_span)
        return self._default_prior(name, guesses, "0")

    # -- evaluation ----------------------------------------------------------
    def resolve(self, values, inputs, *, cell_index=None):
        """All named quantities from free-parameter ``values`` and data ``inputs``.

        Works on NumPy (values with leading sample axes) and on PyTensor.
        """
        out = {**inputs, **values}

        def get(name):
            if name in out:
                return out[name]
            if name in self.transform:
                text = self.transform[name]
                names = expressions.parse(text)[1]
                value = expressions.evaluate(text, {n: get(n) for n in names})
            elif name in self.drift:
                law = self.drift[name]
                params = {n: get(n) for n in drift.parameter_names(name, law)}
                value = drift.evaluate(name, law, inputs["t"], params)
            elif name in self.hierarchy:
                value = self._cell_value(name, out, cell_index)
            else:
                raise HypothesisError(f"{self._where('resolve')}: no value for {name!r}")
            out[name] = value
            return value

        for name in self.needed():
            get(name)
        for name in self.drift:
            get(name)
        for name in self.transform:
            get(name)
        return out

    def _cell_value(self, name, out, cell_index):
        mu, sd, z = out[f"{name}_mu"], out[f"{name}_sd"], out[f"{name}_z"]
        z = z[..., cell_index]
        if self.hierarchy[name]["scale"] == "log":
            return mu * namespace(mu, z).exp(sd * z)
        return mu + sd * z

    def derive(self, resolved, *, missing=None, finite=False):
        """Evaluate the ``[derived]`` quantities from resolved values.

        With a ``missing`` dict, a quantity that raises (or, with
        ``finite``, has no finite value) is left out and its reason put in
        ``missing`` instead of raising, so one bad derived quantity does not
        cost a fit.
        """
        out, known = {}, dict(resolved)
        for name, spec in self.derived.items():
            names = expressions.parse(spec["expr"])[1]
            if missing is None:
                out[name] = known[name] = expressions.evaluate(spec["expr"], {n: known[n] for n in names})
                continue
            try:
                absent = [n for n in names if n not in known]
                if absent:
                    raise ValueError(f"needs {absent[0]!r}, which is missing")
                with np.errstate(all="ignore"):
                    value = expressions.evaluate(spec["expr"], {n: known[n] for n in names})
                if finite and not is_tensor(value) and not np.isfinite(np.asarray(value, dtype=float)).any():
                    raise ValueError("no finite value")
            except Exception as err:  # noqa: BLE001 - reported by name through ``missing``
                missing[name] = f"{spec['expr']!r}: {type(err).__name__}: {err}"
                continue
            out[name] = known[name] = value
        return out

    def check_derived(self, points, inputs, *, cell_index=None):
        """Raise HypothesisError for a ``[derived]`` quantity that fails at every one of ``points``.

        ``points`` are parameter values (e.g. the prior's typical values and
        a few prior draws); a quantity must give a finite value without error
        at one of them at least, so ``1 / 0`` or ``10 ** 10 ** 10`` is
        found before sampling, not after.
        """
        failures = {}
        for values in points:
            try:
                with np.errstate(all="ignore"):
                    resolved = self.resolve(values, inputs, cell_index=cell_index)
            except Exception:  # noqa: BLE001 - the model itself is checked when it is built
                continue
            missing = {}
            self.derive(resolved, missing=missing, finite=True)
            for name in self.derived:
                if name not in missing:
                    failures[name] = None
                elif failures.get(name, "") is not None:
                    failures.setdefault(name, missing[name])
        bad = [(n, why) for n, why in failures.items() if why is not None]
        if bad:
            name, why = bad[0]
            raise HypothesisError(f"{self._where(f'derived.{name}')}: {why} on every value tried from the priors; "
                                  "fix the expression")

    def n_electrodes(self, symmetric):
        """Electrodes in series in the cell: from the file, else from the data."""
        if self.electrodes is None:
            return 2 if symmetric else 1
        if symmetric is not None and (self.electrodes == 2) != bool(symmetric):
            raise HypothesisError(
                f"{self._where('circuit.electrodes')}: the hypothesis says {self.electrodes} electrode(s) "
                f"but the data are marked symmetric={symmetric}; fix the data's 'symmetric' field or the file"
            )
        return self.electrodes

    def impedance(self, resolved, frequency, *, symmetric=False):
        """Cell impedance (re, im) from resolved values; time-varying values broadcast."""
        omega = 2 * np.pi * np.asarray(frequency, dtype=float)
        params = {n: _expand(resolved[n]) for n in self.circuit_parameters}
        re = im = 0.0
        if self.series is not None:
            re, im = self.series.evaluate(omega, {n: params[n] for n in self.series.parameter_names})
        k = self.n_electrodes(symmetric)
        re_e, im_e = self.electrode.evaluate(omega, {n: params[n] for n in self.electrode.parameter_names})
        return re + k * re_e, im + k * im_e

    def overpotential(self, resolved):
        """Predicted overpotential [V] for ``iv`` and ``transient`` hypotheses."""
        names = expressions.parse(self.response)[1]
        return expressions.evaluate(self.response, {n: resolved[n] for n in names})


def for_cells(hypothesis, n_cells):
    """``(hypothesis, notice)``: the hypothesis itself, or without ``[hierarchy]`` when the data hold one cell.

    Cell-to-cell scatter cannot be estimated from one cell: its ``X_sd``
    would return its prior and ``X_z`` make a funnel. With ``n_cells <= 1``
    every hierarchical parameter ``X`` becomes one parameter with the prior
    of ``X`` (``X_mu`` stays defined as ``X`` for ``[derived]`` formulas) and
    ``notice`` says so; otherwise ``notice`` is ``None``.
    """
    if not hypothesis.hierarchy or n_cells > 1:
        return hypothesis, None
    names = sorted(hypothesis.hierarchy)
    pooled = replace(hypothesis, hierarchy={},
                                 transform={**hypothesis.transform, **{f"{n}_mu": n for n in names}})
    notice = (f"{hypothesis.path or hypothesis.name}: the data hold one cell, so the [hierarchy] of {names} "
              "(cell-to-cell scatter) cannot be estimated and is dropped: one value each, with its stated prior")
    return pooled, notice


def _expand(value):
    """Add a trailing frequency axis to time-varying values (ndim >= 1)."""
    ndim = getattr(value, "ndim", 0)
    return value[..., None] if ndim >= 1 else value


# -- loading ----------------------------------------------------------------------

def load(path, *, priors=None, information=None):
    """Load and check one hypothesis file.

    Parameters
    ----------
    path : str or Path
        The TOML file.
    priors : dict, optional
        Extra prior tables that override the file's (e.g. an
        electronic-resistance bound from another experiment).
    information : dict, optional
        Prior tables from outside (a study's information files): each
        overrides the file's where the hypothesis has that parameter and
        is ignored where it has not.

    Raises
    ------
    HypothesisError
        Naming the file and the key for every problem found.
    """
    path = Path(path)
    text, table = read_toml(path, "hypothesis file")
    return from_table(table, path=str(path), text=text, priors=priors, information=information)


def read_toml(path, what):
    """``(text, table)`` of a TOML file; HypothesisError naming it if it is missing, a folder, not UTF-8 or not TOML.

    ``what`` names the kind of file in the messages ("hypothesis file", "study file", ...).
    """
    path = Path(path)
    if path.is_dir():
        raise HypothesisError(f"{what} {path} is a folder; give a .toml file in it")
    if not path.is_file():
        raise HypothesisError(f"{what} {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise HypothesisError(f"{path}: not UTF-8 text (byte {err.start}); save the {what} as UTF-8") from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise HypothesisError(f"{path}: not valid TOML: {err}") from None


def from_table(table, *, path=None, text="", priors=None, information=None):
    """Build a :class:`Hypothesis` from a parsed TOML table (see :func:`load`)."""
    where = path or table.get("name", "hypothesis")
    table = _renamed(table, where)
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise HypothesisError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(_KEYS)}")
    kind = table.get("kind", "impedance")
    if kind not in KINDS:
        raise HypothesisError(f"{where}: kind = {kind!r} is unknown; use one of {list(KINDS)}")
    for key in ("family", "physics"):
        if key not in table:
            raise HypothesisError(f"{where}: missing key {key!r}")
    name = table.get("name", Path(path).stem if path else "hypothesis")
    check_name(name, what="hypothesis name", where=where)
    h = Hypothesis(
        name=name,
        family=table["family"], kind=kind, title=table.get("title", table.get("name", "")),
        physics=" ".join(str(table["physics"]).split()), text=text, path=path,
    )
    _read_model(h, table, where)
    known = set(h.free_parameters()) | set(h.drift) | set(h.hierarchy)
    outside = {k: v for k, v in (information or {}).items() if k in known}
    _read_priors(h, {**table.get("priors", {}), **(priors or {}), **outside}, where)
    _read_noise(h, table.get("noise", {}), where)
    _read_derived(h, table.get("derived", {}), where)
    h.prior_table()  # checks names, cycles and missing priors early
    _check_priors_used(h, table.get("priors", {}), where)
    if "coordinates" in table:
        _read_coordinates(h, table["coordinates"], where)
    if "sampler" in table:
        h.target_accept = _read_sampler(table["sampler"], where)
    return h


def _read_sampler(table, where):
    """``[sampler]``: only ``target_accept``, a number between 0 and 1 (see the module docstring)."""
    where = f"{where} [sampler]"
    if not isinstance(table, dict) or set(table) != {"target_accept"}:
        keys = sorted(table) if isinstance(table, dict) else table
        raise HypothesisError(f"{where}: {keys!r}; a hypothesis's sampler table holds only target_accept "
                              "(e.g. target_accept = 0.97); draws, tuning and chains belong to a study's [sampler]")
    value = table["target_accept"]
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1:
        raise HypothesisError(f"{where}: target_accept = {value!r}; expected a number between 0 and 1, e.g. 0.97")
    return float(value)


def _renamed(table, where):
    """The table with the old key ``experiment`` (now ``family``) renamed, with a one-line FutureWarning."""
    if "experiment" not in table or "family" in table:
        return table
    warnings.warn(f"{where}: key 'experiment' is now 'family' (a study's [[experiment]] is something else); "
                  f"write family = {table['experiment']!r}", FutureWarning, stacklevel=4)
    return {("family" if k == "experiment" else k): v for k, v in table.items()}


def _read_model(h, table, where):
    if h.kind == "impedance":
        circuit = table.get("circuit")
        if not isinstance(circuit, dict) or "electrode" not in circuit:
            raise HypothesisError(f"{where}: [circuit] with an 'electrode' string is required for kind = 'impedance'")
        extra = set(circuit) - {"electrode", "series", "electrodes"}
        if extra:
            raise HypothesisError(f"{where} [circuit]: unknown key(s) {sorted(extra)}")
        try:
            h.electrode = Circuit(circuit["electrode"])
            h.series = Circuit(circuit["series"]) if circuit.get("series") else None
        except CircuitError as err:
            raise HypothesisError(f"{where} [circuit]: {err}") from None
        clash = set(h.electrode.parameters) & set(h.series.parameters if h.series else ())
        if clash:
            raise HypothesisError(f"{where} [circuit]: {sorted(clash)} appear in both series and electrode")
        h.electrodes = circuit.get("electrodes")
        if h.electrodes not in (None, 1, 2):
            raise HypothesisError(f"{where} [circuit]: electrodes = {h.electrodes!r}; use 1 or 2")
    else:
        response = table.get("response", {})
        if set(response) != {"overpotential"}:
            raise HypothesisError(f"{where}: [response] must hold exactly one key, 'overpotential'")
        h.response = response["overpotential"]
        expressions.parse(h.response, where=f"{where} [response.overpotential]")
    h.transform = {k: str(v) for k, v in table.get("transform", {}).items()}
    for name, law in table.get("drift", {}).items():
        law = law.get("law") if isinstance(law, dict) else law
        if law == "constant":
            continue
        if law not in drift.LAWS:
            raise HypothesisError(f"{where} [drift.{name}]: unknown law {law!r}; use constant, {', '.join(drift.LAWS)}")
        if h.kind == "iv":
            raise HypothesisError(f"{where} [drift.{name}]: current–overpotential data have no time axis")
        h.drift[name] = law
    for name, spec in table.get("hierarchy", {}).items():
        if not isinstance(spec, dict) or set(spec) - {"scale", "sd", "centred"} or "sd" not in spec:
            raise HypothesisError(f"{where} [hierarchy.{name}]: expected {{ scale = 'additive'|'log', sd = {{prior}} }}"
                                  " (optional centred = true)")
        scale = spec.get("scale", "additive")
        if scale not in ("additive", "log"):
            raise HypothesisError(f"{where} [hierarchy.{name}]: scale {scale!r}; use 'additive' or 'log'")
        centred = spec.get("centred", False)
        if not isinstance(centred, bool):
            raise HypothesisError(f"{where} [hierarchy.{name}]: centred = {centred!r}; use true or false")
        h.hierarchy[name] = {"scale": scale, "sd": Prior.from_table(spec["sd"], where=f"{where} [hierarchy.{name}.sd]")}
        if centred:  # only when set, so existing hypotheses keep their fingerprint
            h.hierarchy[name]["centred"] = True


def _read_coordinates(h, table, where):
    """Check and store ``[coordinates]`` (see the module docstring)."""
    where = f"{where} [coordinates]"
    sampled = table.get("sampled") if isinstance(table, dict) else None
    if not isinstance(sampled, list) or not sampled or not all(isinstance(n, str) for n in sampled):
        raise HypothesisError(f'{where}: expected sampled = ["u", ...] and one formula per parameter they replace')
    if len(sampled) > MAX_COORDINATES:
        raise HypothesisError(f"{where}: {len(sampled)} sampled names; at most {MAX_COORDINATES} parameters can be "
                              "sampled in other coordinates")
    formulas = {k: v for k, v in table.items() if k != "sampled"}
    taken = set(h.free_parameters()) | set(h.transform) | set(h.drift) | set(h.derived) | set(h.inputs)
    known = set(COORDINATE_INPUTS)
    for name in sampled:
        check_name(name, what="sampled coordinate", where=where)
        if name in taken or name in formulas or name in known:
            raise HypothesisError(f"{where}: sampled name {name!r} is already used; choose another")
        known.add(name)
    priors = h.prior_table()
    for name, text in formulas.items():
        if not isinstance(text, str):
            raise HypothesisError(f"{where}: {name} = {text!r}; a formula is a string")
        unknown = [n for n in expressions.parse(text, where=f"{where} {name}")[1] if n not in known]
        if unknown:
            raise HypothesisError(f"{where}: {name} = {text!r} uses {unknown}; a formula may use the sampled names, "
                                  f"earlier formulas, constants and {', '.join(COORDINATE_INPUTS)}")
        if name in taken and (name not in priors or priors[name].is_fixed or name in h.hierarchy):
            raise HypothesisError(f"{where}: {name!r} is not a sampled parameter of the model (a transform, drift, "
                                  "derived, fixed or per-cell quantity cannot be replaced)")
        known.add(name)
    replaced = [n for n in formulas if n in priors]
    if len(replaced) != len(sampled):
        raise HypothesisError(f"{where}: {len(sampled)} sampled name(s) {sampled} but {len(replaced)} parameter(s) "
                              f"defined {replaced}; the map must be one to one (as many of each)")
    h.coordinates = {"sampled": tuple(sampled), "formulas": formulas}


def coordinate_inputs(inputs):
    """Values of :data:`COORDINATE_INPUTS` from a data set's inputs (``t_max``, ``t_min``: latest and earliest time in h, where there is a time)."""
    t = inputs.get("t")
    return {} if t is None else {"t_max": float(np.max(t)), "t_min": float(np.min(t))}


def _read_priors(h, table, where):
    h.priors = {name: Prior.from_table(spec, where=f"{where} [priors.{name}]") for name, spec in table.items()}


def _check_priors_used(h, table, where):
    known = set(h.free_parameters()) | set(h.drift) | set(h.hierarchy)
    unused = [n for n in table if n not in known]
    if unused:
        raise HypothesisError(
            f"{where} [priors]: prior on {unused} but the model has no such parameter; "
            f"its parameters are {sorted(known)}"
        )


def _read_noise(h, table, where):
    h.noise_model = table.get("model", "absolute" if h.kind != "impedance" else "proportional")
    if h.noise_model not in NOISE_MODELS:
        raise HypothesisError(f"{where} [noise]: model {h.noise_model!r} unknown; use {list(NOISE_MODELS)}")
    extra = set(table) - {"model", *NOISE_MODELS[h.noise_model]}
    if extra:
        raise HypothesisError(f"{where} [noise]: unknown key(s) {sorted(extra)} for model {h.noise_model!r}")
    h.noise_priors = dict(DEFAULT_NOISE_PRIORS[h.noise_model])
    for key in NOISE_MODELS[h.noise_model]:
        if key in table:
            h.noise_priors[key] = Prior.from_table(table[key], where=f"{where} [noise.{key}]")


def _default_floor(impedance):
    """Prior of a composite noise model's floor: log-normal around 1e-3 of the data's median |Z| (or 1e-3)."""
    scale = float(np.median(np.abs(impedance))) if impedance is not None and np.size(impedance) else 1.0
    return Prior("lognormal", {"median": 1e-3 * scale, "sd_log": 2.0})


def _read_derived(h, table, where):
    for name, spec in table.items():
        spec = {"expr": spec} if isinstance(spec, str) else dict(spec)
        if "expr" not in spec or set(spec) - {"expr", "unit", "description"}:
            raise HypothesisError(f"{where} [derived.{name}]: expected {{ expr = '...', unit = '...', description = '...' }}")
        expressions.parse(spec["expr"], where=f"{where} [derived.{name}]")
        h.derived[name] = {"unit": "", "description": "", **spec}


def load_folder(folder, *, priors=None):
    """Load every ``*.toml`` hypothesis in ``folder`` (sorted by name)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise HypothesisError(f"hypothesis folder {folder} does not exist")
    files = sorted(p for p in folder.glob("*.toml"))
    if not files:
        raise HypothesisError(f"hypothesis folder {folder} holds no .toml files")
    hypotheses = [load(p, information=priors) for p in files]
    families = {h.family for h in hypotheses}
    if len(families) > 1:
        raise HypothesisError(f"{folder}: hypotheses of different families {sorted(families)} cannot be compared")
    return hypotheses
