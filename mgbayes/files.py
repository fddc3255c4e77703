"""Files that are never half-written, output folders used by one run at a time, names checked before they become paths.

Every output (fits, tables, figures, the report, cache entries) is written by
:func:`replacing`: to a temporary file with a unique name in the target's
folder, renamed over the target when complete (:func:`os.replace`, atomic
on one file system), removed on any failure. A reader sees the old file or
the new one, never a mixture, and a full disk leaves no debris.

:func:`lock` gives one run at a time an output folder; :func:`check_writable`
finds a read-only or full folder before any sampling; :func:`check_name`
refuses names (experiments, hypotheses, cells) that would leave their folder.
"""

import contextlib
import errno
import fcntl
import os
import secrets
import shutil
from pathlib import Path

from .errors import HypothesisError, OutputError

#: Free space an output folder needs before sampling starts (fits, figures and report of a study).
MIN_FREE_BYTES = 64 << 20
LOCK_NAME = ".mgbayes.lock"


@contextlib.contextmanager
def replacing(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on failure it is removed.

    >>> with replacing("fit.nc") as tmp:          # doctest: +SKIP
    ...     tree.to_netcdf(tmp)

    The temporary name is ``.NAME.RANDOM.tmp`` in the same folder, so two
    writers of the same file never share one, and the rename stays on one
    file system. The folder is created if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path, data, *, mode=0o666):
    """Write ``data`` (str as UTF-8, or bytes) to ``path`` atomically; return the Path.

    ``mode`` is the new file's permission (less the umask); 0o600 keeps it private.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with replacing(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
    return path


def check_name(name, *, what, where):
    """Return ``name`` if it can be one path component; else :class:`~mgbayes.errors.HypothesisError` naming ``where``.

    Refused: a non-string, an empty name, ``.`` and ``..``, path separators
    (``/``, ``\\``), control characters and leading or trailing spaces.
    """
    bad = None
    if not isinstance(name, str) or not name:
        bad = "must be a non-empty string"
    elif name in (".", "..") or any(sep in name for sep in ("/", "\\", os.sep, os.altsep or "/")):
        bad = "becomes a folder or file name and may not contain '/', '\\' or be '.' or '..'"
    elif any(ord(c) < 32 for c in name) or name != name.strip():
        bad = "may not contain control characters or leading/trailing spaces"
    if bad:
        raise HypothesisError(f"{where}: {what} {name!r} {bad}; use letters, digits, '_' or '-'")
    return name


def check_writable(folder):
    """Create ``folder`` if needed and make sure a file can be written there and space is left.

    Raises
    ------
    OutputError
        For a folder that cannot be created or written (read-only, no
        permission), or with less than :data:`MIN_FREE_BYTES` free.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".mgbayes-write-test.{secrets.token_hex(6)}"  # unique: runs may start together
        try:
            write_atomic(probe, b"x" * 4096)
        finally:
            probe.unlink(missing_ok=True)
        free = shutil.disk_usage(folder).free
    except OSError as err:
        reason = "the disk is full" if err.errno == errno.ENOSPC else (err.strerror or str(err))
        raise OutputError(f"output folder {folder} cannot be written ({reason}); choose another --out") from None
    if free < MIN_FREE_BYTES:
        raise OutputError(f"output folder {folder} has only {free / 2**20:.0f} MiB free; mgbayes needs at least "
                          f"{MIN_FREE_BYTES >> 20} MiB for fits, figures and the report; free space or choose another --out")


@contextlib.contextmanager
def lock(folder, *, log=print):
    """Hold ``folder``'s lock: a second run into the same folder waits, saying so, until the first ends.

    The lock is an advisory ``flock`` on ``folder/.mgbayes.lock``; the
    operating system releases it when the process ends, however it ends.
    """
    path = Path(folder) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            log(f"another mgbayes run (pid {holder}) is writing to {folder}; waiting for it to finish ...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock
