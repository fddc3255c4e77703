"""Exceptions raised by mgbayes.

Every error a user can cause is one of these, and its message names the
offending file, value or position and says how to fix it.
"""


class MgbayesError(Exception):
    """Base class of all mgbayes errors."""


class DataError(MgbayesError, ValueError):
    """A data file or array cannot be used as it is (bad format, NaN, units...)."""


class CircuitError(MgbayesError, ValueError):
    """A circuit string cannot be parsed, or names an unknown element."""


class HypothesisError(MgbayesError, ValueError):
    """A hypothesis or study file is malformed or inconsistent."""


class SamplingError(MgbayesError, RuntimeError):
    """The sampler failed in a way that makes the results unusable."""


class OutputError(MgbayesError, OSError):
    """An output folder or file cannot be written (read-only, full, in use)."""
