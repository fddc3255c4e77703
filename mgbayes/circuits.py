"""Circuit strings → tree → impedance, on NumPy or PyTensor.

Syntax (that of impedance.py, with physical names allowed)::

    R_el-p(R_ct,CPE_dl)          series: '-'   parallel: p(a, b, ...)
    R0-p(R1,C1)-Wo1              nesting: p(R1, R2-p(R3,C3))

An element name is a type prefix (``R C L CPE Q W Wo Ws G``, see
:mod:`mgbayes.elements`) followed by digits or ``_label``. The string is
parsed by a small recursive-descent parser (no ``eval``); errors name the
position and what was expected.
"""

import re
from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt

from .elements import ELEMENTS
from .errors import CircuitError

_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z][A-Za-z0-9_]*)|(?P<symbol>[-(),])|(?P<bad>\S))")


@dataclass(frozen=True)
class Element:
    """A leaf of the circuit tree: one named element of a registered type."""

    name: str
    prefix: str

    @property
    def kind(self):
        return ELEMENTS[self.prefix]

    def parameter_names(self):
        return self.kind.parameter_names(self.name)

    def evaluate(self, omega, params):
        return self.kind.function(omega, *(params[n] for n in self.parameter_names()))

    def admittance(self, omega, params):
        if self.kind.admittance is None:
            return _invert(*self.evaluate(omega, params))
        return self.kind.admittance(omega, *(params[n] for n in self.parameter_names()))

    def leaves(self):
        yield self

    def __str__(self):
        return self.name


@dataclass(frozen=True)
class Series:
    """Elements or sub-circuits in series: impedances add."""

    parts: tuple

    def evaluate(self, omega, params):
        re, im = self.parts[0].evaluate(omega, params)
        for part in self.parts[1:]:
            re_k, im_k = part.evaluate(omega, params)
            re, im = re + re_k, im + im_k
        return re, im

    def admittance(self, omega, params):
        return _invert(*self.evaluate(omega, params))

    def leaves(self):
        for part in self.parts:
            yield from part.leaves()

    def __str__(self):
        return "-".join(str(p) for p in self.parts)


@dataclass(frozen=True)
class Parallel:
    """Branches in parallel: admittances add (in closed form where an element states its own)."""

    parts: tuple

    def evaluate(self, omega, params):
        return _invert(*self.admittance(omega, params))

    def admittance(self, omega, params):
        g = b = 0.0
        for part in self.parts:
            g_k, b_k = part.admittance(omega, params)
            g, b = g + g_k, b + b_k
        return g, b

    def leaves(self):
        for part in self.parts:
            yield from part.leaves()

    def __str__(self):
        return "p(" + ",".join(str(p) for p in self.parts) + ")"


def _invert(re, im):
    """1 / (re + j im) as (re, im): impedance from admittance and back."""
    norm = re**2 + im**2
    return re / norm, -im / norm


def _element_prefix(name):
    """Longest registered prefix of ``name`` followed by digits or ``_label``."""
    for prefix in sorted(ELEMENTS, key=len, reverse=True):
        rest = name[len(prefix):]
        if name.startswith(prefix) and re.fullmatch(r"\d+|_[A-Za-z0-9_]+", rest):
            return prefix
    return None


class _Parser:
    def __init__(self, text):
        self.text = text
        self.tokens = self._tokenize(text)
        self.i = 0

    def _tokenize(self, text):
        tokens, pos = [], 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m.group("bad") is not None:
                self._fail(m.start("bad"), f"unexpected character {m.group('bad')!r}")
            if m.lastgroup:
                tokens.append((m.group(m.lastgroup), m.start(m.lastgroup)))
            pos = m.end()
        return tokens

    def _fail(self, position, message):
        pointer = " " * position + "^"
        raise CircuitError(f"in circuit {self.text!r} at position {position}: {message}\n  {self.text}\n  {pointer}")

    def _peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, len(self.text))

    def _take(self, expected):
        token, pos = self._peek()
        if token != expected:
            found = "end of string" if token is None else repr(token)
            self._fail(pos, f"expected {expected!r}, found {found}")
        self.i += 1

    def parse(self):
        if not self.tokens:
            raise CircuitError("empty circuit string: expected elements such as 'R0-p(R1,C1)'")
        tree = self._series()
        token, pos = self._peek()
        if token is not None:
            self._fail(pos, f"expected '-' or end of string, found {token!r}")
        return tree

    def _series(self):
        parts = [self._term()]
        while self._peek()[0] == "-":
            self.i += 1
            parts.append(self._term())
        return parts[0] if len(parts) == 1 else Series(tuple(parts))

    def _term(self):
        token, pos = self._peek()
        if token == "p" and self.i + 1 < len(self.tokens) and self.tokens[self.i + 1][0] == "(":
            return self._parallel()
        if token is None or token in "-(),":
            found = "end of string" if token is None else repr(token)
            self._fail(pos, f"expected an element or 'p(', found {found}")
        self.i += 1
        prefix = _element_prefix(token)
        if prefix is None:
            known = ", ".join(sorted(ELEMENTS))
            self._fail(
                pos,
                f"unknown element {token!r}: an element is a type ({known}) "
                "followed by digits or '_label', e.g. R1, R_ct, CPE_dl",
            )
        return Element(token, prefix)

    def _parallel(self):
        _, start = self._peek()
        self.i += 1
        self._take("(")
        parts = [self._series()]
        while self._peek()[0] == ",":
            self.i += 1
            parts.append(self._series())
        self._take(")")
        if len(parts) < 2:
            self._fail(start, "p(...) needs at least two branches separated by ','")
        return Parallel(tuple(parts))


class Circuit:
    """An equivalent circuit parsed from a string.

    Parameters
    ----------
    text : str
        Circuit string, e.g. ``"R_el-p(R_ct,CPE_dl)"``.

    Examples
    --------
    >>> c = Circuit("R0-p(R1,C1)")
    >>> c.parameter_names
    ['R0', 'R1', 'C1']
    >>> z = c.impedance([1e3, 1.0], R0=10, R1=100, C1=1e-6)
    """

    def __init__(self, text):
        self.text = str(text)
        self.tree = _Parser(self.text).parse()
        self.elements = list(self.tree.leaves())
        names = [e.name for e in self.elements]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            position = self.text.find(duplicated[0], self.text.find(duplicated[0]) + 1)
            raise CircuitError(
                f"in circuit {self.text!r} at position {position}: element name "
                f"{duplicated[0]!r} is used twice; give each element its own name"
            )
        self.parameters = {
            name: param
            for e in self.elements
            for name, param in zip(e.parameter_names(), e.kind.params)
        }

    @property
    def parameter_names(self):
        """Parameter names in order of appearance (``['R0', 'CPE1_T', 'CPE1_P']``)."""
        return list(self.parameters)

    def units(self):
        """Mapping parameter name → unit (with impedance in Ohm)."""
        return {name: p.unit for name, p in self.parameters.items()}

    def guesses(self, frequency, impedance):
        """Characteristic values of every parameter from the data (prior centres)."""
        frequency, impedance = np.asarray(frequency), np.asarray(impedance)
        return {name: float(p.guess(frequency, impedance)) for name, p in self.parameters.items()}

    def _check(self, params):
        missing = [n for n in self.parameter_names if n not in params]
        extra = [n for n in params if n not in self.parameters]
        if missing or extra:
            raise CircuitError(
                f"circuit {self.text!r} takes parameters {self.parameter_names}; "
                f"missing {missing}, unknown {extra}"
            )

    def evaluate(self, omega, params):
        """(Re Z, Im Z) at angular frequency ``omega``, on NumPy or PyTensor.

        ``params`` maps every parameter name to a number, array or tensor;
        all broadcast against ``omega``.
        """
        self._check(params)
        return self.tree.evaluate(omega, params)

    def impedance(self, frequency, **params):
        """Complex impedance (NumPy) at ``frequency`` in Hz."""
        omega = 2 * np.pi * np.asarray(frequency, dtype=float)
        values = {k: np.asarray(v, dtype=float) for k, v in params.items()}
        re, im = self.evaluate(omega, values)
        return np.asarray(re) + 1j * np.asarray(im)

    def tensor(self, frequency, params):
        """(Re Z, Im Z) as PyTensor expressions at ``frequency`` in Hz."""
        omega = pt.as_tensor_variable(2 * np.pi * np.asarray(frequency, dtype=float))
        return self.evaluate(omega, params)

    def __str__(self):
        return self.text

    def __repr__(self):
        return f"Circuit({self.text!r})"


#: Arcs whose labels can swap: a resistor in parallel with one of these (prefix → its parameters' suffixes).
ARC_PARTNERS = {"C": ("",), "CPE": ("_T", "_P"), "Q": ("_T", "_P")}


def _arc(node):
    """``(partner prefix, parameter names)`` of an R ‖ C or R ‖ CPE arc, else None."""
    if not isinstance(node, Parallel) or len(node.parts) != 2 or not all(isinstance(p, Element) for p in node.parts):
        return None
    r, x = sorted(node.parts, key=lambda e: e.prefix != "R")
    if r.prefix != "R" or x.prefix not in ARC_PARTNERS:
        return None
    return ("CPE" if x.prefix == "Q" else x.prefix), tuple(r.parameter_names()) + tuple(x.parameter_names())


def exchangeable_arcs(circuit):
    """Groups of arcs (R ‖ C, or R ‖ CPE) in series with each other, whose labels the data cannot tell apart.

    Two R ‖ CPE arcs in series give the same impedance whichever is called
    "1", so a posterior over them has one mode per labelling. Returns a list
    of groups; each group lists the arcs' parameter names, e.g.
    ``[[("R1", "CPE1_T", "CPE1_P"), ("R2", "CPE2_T", "CPE2_P")]]``.
    """
    groups = []

    def visit(node):
        if isinstance(node, Series):
            arcs = {}
            for part in node.parts:
                arc = _arc(part)
                if arc is not None:
                    arcs.setdefault(arc[0], []).append(arc[1])
            groups.extend(list(a) for a in arcs.values() if len(a) > 1)
        for part in getattr(node, "parts", ()):
            visit(part)

    visit(circuit.tree)
    return groups


def time_constant(arc, values):
    """Time constant (s) of an arc from ``values`` by parameter name: R·C, or (R·T)^(1/P) for a CPE."""
    if len(arc) == 2:
        return values[arc[0]] * values[arc[1]]
    r, t, p = (values[n] for n in arc)
    return (r * t) ** (1.0 / p)


def order_arcs(values, group):
    """Relabel the arcs of ``group`` in every draw so that arc 1 has the shortest time constant.

    ``values`` maps parameter names to arrays of draws (same shape);
    returns a new mapping. With exchangeable priors this is the posterior
    restricted to one labelling: "R1" is then the same (fastest) arc in every
    draw, chain and seed.
    """
    tau = np.stack([np.asarray(time_constant(arc, values), dtype=float) for arc in group], axis=-1)
    rank = np.argsort(tau, axis=-1, kind="stable")
    out = dict(values)
    for slot in range(len(group[0])):  # R, then C (or the CPE's T and P)
        stacked = np.stack([np.asarray(values[arc[slot]]) for arc in group], axis=-1)
        for k, arc in enumerate(group):
            out[arc[slot]] = np.take_along_axis(stacked, rank[..., k:k + 1], axis=-1)[..., 0]
    return out
