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

Entries are pickles, and unpickling runs code; so nothing is unpickled that
this user did not write. Every entry starts with an HMAC-SHA256 of its key
and contents under a per-user secret (``.secret``, 32 random bytes, mode
0600, in the cache folder). A folder or secret not owned by this user or
writable by others is refused with a :class:`CacheWarning` naming it (the
run goes on, compiling); an entry that fails the check, is not this user's
or cannot be read is ignored, removed and rebuilt.
"""

import functools
import hashlib
import hmac
import importlib.metadata
import logging
import os
import pickle
import secrets
import stat
import warnings
from pathlib import Path

import numpy as np

from . import files

MAX_ENTRIES = 200
MAX_BYTES = 512 << 20
SECRET_NAME = ".secret"
_TAG = hashlib.sha256().digest_size
log = logging.getLogger(__name__)


class CacheWarning(UserWarning):
    """The cache folder or its secret cannot be trusted; the cache is not used."""


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


def _private(st):
    """True for a file or folder owned by this user that no one else may write."""
    return st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _trusted_folder(create=False):
    """The cache folder if it is this user's and not writable by others (created 0700 if asked), else None."""
    folder = directory()
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = os.lstat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or not _private(st):
        warnings.warn(f"cache folder {folder} is not owned by you or is writable by others, so its entries could "
                      "run someone else's code; it is not used (fix its owner and mode, e.g. chmod 700, or set "
                      "MGBAYES_CACHE_DIR to a folder of your own)", CacheWarning, stacklevel=3)
        return None
    return folder


def _read_private(path):
    """Bytes of ``path`` if it is a regular file of this user's that others cannot write, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode) or not _private(st):
            return None
        return handle.read()


def _secret(folder):
    """This user's secret key (created on first use), or None with a warning if it cannot be trusted."""
    path = folder / SECRET_NAME
    if not path.exists():
        tmp = folder / f".secret.{secrets.token_hex(6)}.tmp"
        try:
            files.write_atomic(tmp, secrets.token_bytes(32), mode=0o600)
            os.link(tmp, path)  # never replaces a secret another process created meanwhile
        except OSError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    key = _read_private(path)
    if key is None or len(key) != 32 or os.stat(path).st_mode & 0o077:
        warnings.warn(f"cache secret {path} is not a private 32-byte file of yours (mode 0600); the cache is not "
                      "used (delete the file to make a new one)", CacheWarning, stacklevel=3)
        return None
    return key


def _tag(secret, key, payload):
    return hmac.new(secret, key.encode() + b"\0" + payload, hashlib.sha256).digest()


def load(key):
    """The compiled function stored under ``key``, or None (missing, untrusted, unreadable or cache off).

    Nothing is unpickled unless its HMAC under this user's secret matches.
    """
    if not enabled():
        return None
    folder = _trusted_folder()
    if folder is None or not (folder / f"{key}.pkl").exists():
        return None
    secret = _secret(folder)
    if secret is None:
        return None
    path = folder / f"{key}.pkl"
    data = _read_private(path)
    try:
        if data is None or len(data) <= _TAG or not hmac.compare_digest(data[:_TAG], _tag(secret, key, data[_TAG:])):
            raise ValueError("not written by this user's mgbayes (authentication failed)")
        function = pickle.loads(data[_TAG:])
        os.utime(path)  # recently used: pruned last
        return function
    except Exception as err:  # an untrusted, truncated or incompatible entry is rebuilt, never trusted
        log.warning("ignoring cache entry %s (%s); it will be rebuilt", path, err)
        path.unlink(missing_ok=True)
        return None


def store(key, function):
    """Keep ``function`` under ``key`` (atomically, authenticated); a failure only costs the next run a compile."""
    if not enabled():
        return
    folder = _trusted_folder(create=True)
    secret = folder and _secret(folder)
    if not secret:
        return
    try:
        payload = pickle.dumps(function, protocol=pickle.HIGHEST_PROTOCOL)
        files.write_atomic(folder / f"{key}.pkl", _tag(secret, key, payload) + payload, mode=0o600)
        _prune(folder)
    except Exception as err:
        log.info("could not cache a compiled density in %s (%s)", folder, err)


def _prune(folder):
    entries = sorted(folder.glob("*.pkl"), key=lambda p: p.stat().st_mtime, reverse=True)  # newest first
    total = 0
    for k, path in enumerate(entries):
        total += path.stat().st_size
        if k >= MAX_ENTRIES or total > MAX_BYTES:
            path.unlink(missing_ok=True)
