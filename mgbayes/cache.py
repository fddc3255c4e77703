"""Compiled log densities kept on disk, so a warm run skips PyTensor's graph rewriting.

Compiling a model's log density and gradient costs 1-3 s, nearly all of it
graph rewriting that PyTensor's own C-code cache does not save; loading the
compiled function back costs about 0.3 s. Entries are keyed by
:func:`fingerprint` of everything that shapes the graph: the hypothesis
and its prior table, the observations, the excluded observations, the
versions of PyMC/PyTensor/NumPy and a hash of mgbayes's own source, so an
edit to the code invalidates them.

The folder is ``$MGBAYES_CACHE_DIR`` or ``~/.cache/mgbayes/densities``
(``$XDG_CACHE_HOME`` honoured); ``MGBAYES_CACHE=0`` turns the cache off.
At most :data:`MAX_ENTRIES` files and :data:`MAX_BYTES` are kept, the least
recently used removed first.
"""

import functools
import hashlib
import importlib.metadata
import logging
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np

MAX_ENTRIES = 200
MAX_BYTES = 512 << 20
log = logging.getLogger(__name__)


def enabled():
    """False when ``MGBAYES_CACHE=0``."""
    return os.environ.get("MGBAYES_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def directory():
    """The cache folder (not created here)."""
    if os.environ.get("MGBAYES_CACHE_DIR"):
        return Path(os.environ["MGBAYES_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mgbayes" / "densities"


@functools.cache
def code_version():
    """Versions of the numerical stack and a hash of mgbayes's source files."""
    h = hashlib.sha256()
    for package in ("pymc", "pytensor", "numpy"):
        h.update(f"{package} {importlib.metadata.version(package)};".encode())
    for path in sorted(Path(__file__).resolve().parent.rglob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()


def _feed(h, obj):
    if isinstance(obj, np.ndarray) or isinstance(obj, np.generic):
        a = np.ascontiguousarray(obj)
        h.update(f"array {a.dtype.str} {a.shape};".encode())
        h.update(a.tobytes())
    elif isinstance(obj, dict):
        h.update(f"dict {len(obj)};".encode())
        for key, value in obj.items():
            _feed(h, key)
            _feed(h, value)
    elif isinstance(obj, (list, tuple)):
        h.update(f"{type(obj).__name__} {len(obj)};".encode())
        for value in obj:
            _feed(h, value)
    else:
        h.update(f"{type(obj).__name__} {obj!r};".encode())


def fingerprint(*parts):
    """SHA-256 of ``parts`` (arrays by their bytes, containers element-wise, the rest by ``repr``) and the code version."""
    h = hashlib.sha256(code_version().encode())
    for part in parts:
        _feed(h, part)
    return h.hexdigest()


def load(key):
    """The compiled function stored under ``key``, or None (missing, unreadable or cache off)."""
    path = directory() / f"{key}.pkl"
    if not enabled() or not path.is_file():
        return None
    try:
        with open(path, "rb") as f:
            function = pickle.load(f)
        os.utime(path)  # recently used: pruned last
        return function
    except Exception as err:  # a truncated or incompatible entry is rebuilt, never trusted
        log.info("ignoring unreadable cache entry %s (%s)", path, err)
        path.unlink(missing_ok=True)
        return None


def store(key, function):
    """Keep ``function`` under ``key`` (atomically); a failure only costs the next run a compile."""
    if not enabled():
        return
    folder, tmp = directory(), None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(function, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, folder / f"{key}.pkl")
        tmp = None
        _prune(folder)
    except Exception as err:
        log.info("could not cache a compiled density in %s (%s)", folder, err)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _prune(folder):
    entries = sorted(folder.glob("*.pkl"), key=lambda p: p.stat().st_mtime, reverse=True)  # newest first
    total = 0
    for k, path in enumerate(entries):
        total += path.stat().st_size
        if k >= MAX_ENTRIES or total > MAX_BYTES:
            path.unlink(missing_ok=True)
