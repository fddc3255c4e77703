"""Small arithmetic expressions in hypothesis files, evaluated without ``eval``.

Hypothesis files state physics as formulas, e.g.
``CPE_film_T = "permittivity * EPS0_F_cm / (thickness_nm * 1e-7)"`` or
``R_film = "1 / (1 / R_ion + 1 / R_e)"``. Such a string is parsed with
:mod:`ast` and only numbers, names, ``+ - * / **``, unary minus and the
functions listed by :func:`functions` (math, and the physics helpers of
:mod:`mgbayes.derived` and :mod:`mgbayes.kinetics`, keywords allowed) are
accepted. The same expression evaluates on
NumPy arrays and on PyTensor tensors.
"""

import ast
import functools
import importlib
import operator

import numpy as np

from .backend import is_tensor, namespace
from .constants import EPS0, F, N_MG, R_GAS, T_ROOM
from .errors import HypothesisError

#: Constants usable by name in expressions (SI unless the name says otherwise).
CONSTANTS = {
    "pi": 3.141592653589793,
    "F": F,
    "R_gas": R_GAS,
    "T_room": T_ROOM,
    "EPS0": EPS0,
    "EPS0_F_cm": EPS0 / 100.0,  # F/cm: use with thickness in cm and C in F/cm2
    "n_Mg": N_MG,
}

_MATH = ("exp", "expm1", "log", "log10", "log1p", "sqrt", "sinh", "cosh", "tanh", "arcsinh", "abs", "max")


def sigmoid(x):
    """Logistic function 1 / (1 + exp(-x)), for smooth change points.

    On NumPy values ``exp(-x)`` overflows to inf where ``-x`` is large (far
    before a change point, as refit and posterior draws of the stripping
    transients often are) and the value is 0, as it should be: that
    overflow is not warned about. (SciPy's ``expit`` differs in the last
    digit, which changed the shipped demo data.)
    """
    if not is_tensor(x):
        with np.errstate(over="ignore"):
            return 1 / (1 + np.exp(-x))
    return 1 / (1 + namespace(x).exp(-x))


def softplus(x):
    """log(1 + exp(x)) without overflow, max(x, 0) + log1p(exp(-|x|)): a smooth positive version of ``x``."""
    xp = namespace(x)
    return (x + xp.abs(x)) / 2 + xp.log1p(xp.exp(-xp.abs(x)))

#: Physics functions usable in expressions, by module (all work on NumPy and PyTensor).
_PHYSICS = {
    "derived": ("cpe_capacitance", "cpe_coefficient", "peak_frequency", "parallel", "time_constant"),
    "kinetics": (
        "tunnelling_current", "tunnelling_overpotential", "butler_volmer_current", "bv_overpotential",
        "onset_tafel_overpotential", "mass_transport_overpotential",
        "simmons_overpotential", "simmons_log_conductance", "simmons_gamma", "poole_frenkel_current",
        "poole_frenkel_overpotential", "tafel_overpotential", "tafel_slope", "koutecky_levich_overpotential",
        "two_channel_overpotential", "two_channel_side_fraction", "sand_time_h",
    ),
}


@functools.cache
def functions():
    """Names usable as functions in expressions: math, then physics helpers."""

    table = dict.fromkeys(_MATH)
    table["sigmoid"] = sigmoid
    table["softplus"] = softplus
    for module, names in _PHYSICS.items():
        mod = importlib.import_module(f"mgbayes.{module}")
        table.update({n: getattr(mod, n) for n in names if hasattr(mod, n)})
    return table

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow}


def parse(text, *, where="expression"):
    """Parse ``text`` and return it with the names it uses (constants excluded).

    Raises
    ------
    HypothesisError
        If the text is not a valid arithmetic expression.
    """
    try:
        tree = ast.parse(str(text), mode="eval")
    except SyntaxError as err:
        raise HypothesisError(f"{where}: cannot parse {text!r}: {err.msg} at column {err.offset}") from None
    names, known = [], functions()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in known):
                raise HypothesisError(f"{where}: {text!r} calls an unknown function; allowed: {', '.join(known)}")
        elif isinstance(node, ast.Constant) and (isinstance(node.value, bool) or not isinstance(node.value, (int, float))):
            raise HypothesisError(f"{where}: {text!r} holds {node.value!r}; only numbers are allowed")
        elif isinstance(node, ast.Name):
            if node.id not in known and node.id not in CONSTANTS and node.id not in names:
                names.append(node.id)
        elif not isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Load,
                                   ast.USub, ast.UAdd, ast.keyword, *_BINARY)):
            raise HypothesisError(f"{where}: {text!r} uses {type(node).__name__}, which is not allowed")
    return tree, names


def evaluate(text, values, *, where="expression"):
    """Evaluate ``text`` with ``values`` (name → number, array or tensor)."""
    tree, _ = parse(text, where=where)
    xp, known = namespace(*values.values()), functions()

    def visit(node):
        if isinstance(node, ast.Expression):
            return visit(node.body)
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return values[node.id] if node.id in values else CONSTANTS[node.id]
        if isinstance(node, ast.UnaryOp):
            return -visit(node.operand) if isinstance(node.op, ast.USub) else visit(node.operand)
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](visit(node.left), visit(node.right))
        function = known[node.func.id] or getattr(xp, node.func.id)
        kwargs = {k.arg: visit(k.value) for k in node.keywords}
        return function(*(visit(a) for a in node.args), **kwargs)

    return visit(tree)
