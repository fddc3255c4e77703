"""Where the shipped hypothesis files and demo data are.

In an installed wheel they are package data, ``mgbayes/share/models`` and
``mgbayes/share/data`` (pyproject.toml maps the repository's ``models/`` and
``data/`` there), found with :mod:`importlib.resources`. In a source
checkout or an editable install that folder does not exist and the
repository's own ``models/`` and ``data/`` beside the package are used, so
edits to them take effect at once.
"""

import importlib.resources
from pathlib import Path


def _shipped(name):
    packaged = importlib.resources.files("mgbayes") / "share" / name
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / name


def models_dir():
    """The folder of the shipped hypothesis files (``ocv_drift/``, ``plating_iv/``, ``studies/``...)."""
    return _shipped("models")


def data_dir():
    """The folder of the shipped data (``demo/``: synthetic demo data; ``paper/``: values read from the paper)."""
    return _shipped("data")
