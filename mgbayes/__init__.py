"""mgbayes: Bayesian hypothesis testing on electrochemical data.

The public API (see :mod:`mgbayes.api`)::

    import mgbayes
    series = mgbayes.read("cell.mpt", area_cm2=1.131)
    result = mgbayes.fit("R0-p(R1,CPE1)", series)          # an ArviZ-ready DataTree
    film = mgbayes.fit(mgbayes.load("film.toml"), series)   # a hypothesis file
    print(mgbayes.compare({"circuit": result, "film": film}))
    mgbayes.run("my_study.toml", out="results")            # a whole study, with its report

The names are imported on first use, so ``import mgbayes`` (and the
``mgbayes`` command's start) stays fast until PyMC is needed.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "read", "Circuit", "load", "hypothesis", "fit", "compare", "run", "predict", "plot",
           "summary", "loo_pit", "save", "load_result", "CircuitModel", "Spectrum", "SpectrumSeries", "IVCurve", "Transient"]
_DATA = {"Spectrum", "SpectrumSeries", "IVCurve", "Transient"}


def __getattr__(name):  # PEP 562: the API is imported on first use
    if name in _DATA:
        from . import data

        return getattr(data, name)
    if name in __all__ and name != "compare":  # compare: see _callable_compare
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'mgbayes' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


def _callable_compare():
    """Make ``mgbayes.compare`` both the module :mod:`mgbayes.compare` and the function :func:`mgbayes.api.compare`.

    Importing the submodule binds ``mgbayes.compare`` to it, whatever the
    package defined; so the module itself is made callable, forwarding to
    the API function, and ``mgbayes.compare.Comparison`` keeps working.
    """
    import importlib
    import types

    module = importlib.import_module(".compare", __name__)

    class CallableModule(types.ModuleType):
        def __call__(self, results, **options):
            from .api import compare

            return compare(results, **options)

    module.__class__ = CallableModule


_callable_compare()
