"""Units of every quantity of a hypothesis, from where each is defined.

A fit stamps these on its results (``attrs["unit"]`` of every variable), so
tables, figures and ArviZ read them from the result and nothing guesses
them at report time. Units are ASCII strings (``"Ohm cm2"``, ``"F s^(P-1)
cm-2"``, ``"h-1"``); ``"1"`` is dimensionless, ``""`` not known.

Sources, first match wins:

1. a ``unit`` key in the quantity's prior in the hypothesis file
   (``R_e = { dist = "lognormal", median = 3e3, sd_log = 1, unit = "Ohm cm2" }``);
2. the circuit element that declares it (:class:`mgbayes.elements.Param`,
   per area when the data are in Ohm cm2);
3. the kinetic-law keyword it is passed as (:data:`mgbayes.kinetics.UNITS`);
4. its ``[derived]`` entry's ``unit``;
5. the drift law that defines it (:data:`mgbayes.drift.SUFFIX_UNITS`; ``X_0``
   and ``X_inf`` take the unit of ``X``) or the hierarchy (``X_mu`` and an
   additive ``X_sd`` take the unit of ``X``, offsets are 1);
6. the noise model (relative scales are 1, absolute ones take the data's unit);
7. for transforms and parameters without any of these, the symbol: in
   impedance hypotheses ``R...`` is a resistance and ``C...`` a capacitance,
   in I-V hypotheses ``eta...`` is an overpotential in V; ``..._nm`` is nm,
   ``..._h`` h, ``..._P`` and ``permittivity`` 1.
"""

import re
import tomllib

from . import drift, kinetics

#: Noise model → unit of ``noise_sigma`` ("data" means the data's unit).
NOISE_UNITS = {"proportional": "1", "student_t": "1", "absolute": "data"}


def per_area(unit, area):
    """The unit of an element parameter (declared for Ohm) when impedance is in Ohm cm2."""
    if not area or unit in ("", "1", "s", "h"):
        return unit
    if "Ohm" in unit:
        return unit.replace("Ohm", "Ohm cm2", 1)
    if unit.startswith("F"):
        return unit + " cm-2"
    if unit.startswith("H"):
        return unit + " cm2"
    return unit


#: ``attrs["role"]`` of a sampler coordinate (a hypothesis's ``[coordinates]``) in a posterior: tables leave it out
COORDINATE_ROLE = "sampler coordinate"


def units(hypothesis, data_unit):
    """Name → unit of every parameter, drift/hierarchy parameter, transform, derived and noise quantity.

    Parameters
    ----------
    hypothesis : mgbayes.hypotheses.Hypothesis
    data_unit : str
        Unit of the observed values (``"Ohm"``, ``"Ohm cm2"``, ``"V"``).
    """
    h = hypothesis
    area = "cm2" in str(data_unit)
    known = {}
    try:
        table = tomllib.loads(h.text) if h.text else {}
    except tomllib.TOMLDecodeError:
        table = {}
    for name, spec in table.get("priors", {}).items():
        if isinstance(spec, dict) and spec.get("unit"):
            known[name] = str(spec["unit"])
    for name, param in h.circuit_parameters.items():
        known.setdefault(name, per_area(param.unit, area))
    if h.response:
        for keyword, argument in re.findall(r"(\w+)\s*=\s*(\w+)", h.response):
            if keyword in kinetics.UNITS:
                known.setdefault(argument, kinetics.UNITS[keyword])
        for name in re.findall(r"\b\w+\b", h.response):
            if name in kinetics.UNITS:
                known.setdefault(name, kinetics.UNITS[name])
    for name, spec in h.derived.items():
        if spec.get("unit"):
            known.setdefault(name, str(spec["unit"]))
    for name in [*h.transform, *h.drift, *h.hierarchy]:
        known.setdefault(name, by_symbol(name, h.kind, area))
    for base, law in h.drift.items():
        for suffix in drift.LAWS[law][1]:
            known.setdefault(f"{base}_{suffix}", drift.SUFFIX_UNITS.get(suffix, known.get(base, "")))
    for base, spec in h.hierarchy.items():
        known.setdefault(f"{base}_mu", known.get(base, ""))
        known.setdefault(f"{base}_sd", known.get(base, "") if spec["scale"] == "additive" else "1")
        known.setdefault(f"{base}_z", "1")
    noise = NOISE_UNITS.get(h.noise_model, "")
    if noise == "data" or (h.noise_model == "student_t" and h.kind != "impedance"):
        noise = str(data_unit)
    known.setdefault("noise_sigma", noise)
    known.setdefault("noise_nu", "1")
    for name in h.free_parameters():
        known.setdefault(name, by_symbol(name, h.kind, area))
    for name in h.coordinates.get("sampled", ()):  # the sampler's own coordinates ([coordinates])
        known.setdefault(name, "1")
    for name, unit in list(known.items()):  # a loguniform prior's sampled logarithm
        known.setdefault(f"{name}_log", f"log({unit})" if unit not in ("", "1") else "1")
    return known


def by_symbol(name, kind, area):
    """Unit from the usual symbols, for quantities whose definition states none."""
    if kind == "impedance" and re.match(r"R(_|\d|$)", name):
        return per_area("Ohm", area)
    if kind == "impedance" and re.match(r"C(_|\d|$)", name):
        return per_area("F", area)
    if kind != "impedance" and re.match(r"eta(_|$)", name):
        return "V"
    if name.endswith("_nm"):
        return "nm"
    if name.endswith("_h"):
        return "h"
    if name in ("permittivity", "noise_nu") or name.endswith("_P"):
        return "1"
    return ""
