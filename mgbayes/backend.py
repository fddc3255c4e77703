"""One formula, two backends: NumPy arrays or PyTensor tensors.

Element and kinetic-law functions are written once with ``xp = namespace(x)``
and then run on NumPy arrays (for simulation and least squares) and on
PyTensor tensors (for NUTS, with gradients). Only real arithmetic is used:
PyTensor cannot differentiate through complex numbers.
"""

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable


def is_tensor(*values):
    """Return True if any of ``values`` is a PyTensor variable."""
    return any(isinstance(v, Variable) for v in values)


def namespace(*values):
    """Return ``pytensor.tensor`` if any value is symbolic, else ``numpy``.

    Both namespaces provide ``exp, log, log1p, sqrt, cos, sin, arctan2,
    sinh, cosh, arcsinh, tanh, abs, where, power, sign, maximum, minimum``.
    """
    return pt if is_tensor(*values) else np
