"""Run independent fits in parallel: a local process pool, or a Dask cluster.

:func:`map_fits` takes named tasks (a module-level function and its keyword
arguments) and returns their results by name, in the order given. Where
they run is the only thing ``scheduler`` changes:

``"serial"``
    one after another in this process (debugging, tests);
``None`` or ``"processes"``
    a :class:`concurrent.futures.ProcessPoolExecutor` on this machine;
``"local"``
    a :class:`dask.distributed.LocalCluster` started for the call;
an address (``"tcp://host:8786"``)
    an existing Dask distributed scheduler. **Trusted schedulers only**:
    results come back from it unpickled, so whoever runs the scheduler or
    its workers can run code in this process. A study file may name one
    only when the command line names it too (``mgbayes run --scheduler``).

With Dask, the fits are futures (``client.submit(..., retries=...)``)
gathered with ``as_completed``; no job queue of our own. A failed task is
retried ``retries`` times everywhere; a user mistake (:class:`mgbayes.errors.MgbayesError`,
e.g. a bad hypothesis) is raised as it is, without retries, serially and on the
process pool. Results are identical whatever the
scheduler, as long as every task carries its own seed.
"""

import ctypes
import multiprocessing
import multiprocessing.context
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

from .errors import MgbayesError

#: Schedulers that run on this machine; any other string is a remote Dask address.
LOCAL = (None, "serial", "processes", "local")
_PR_SET_PDEATHSIG = 1


def cpus():
    """CPUs this process may run on (its affinity, where the OS reports one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def is_remote(scheduler):
    """True for a scheduler address (``"tcp://..."``): a Dask scheduler that must be trusted."""
    return scheduler not in LOCAL


def die_with_parent(parent_pid=None):
    """Have the kernel kill this process when its parent dies (Linux ``PR_SET_PDEATHSIG``; elsewhere nothing).

    Called first thing in chain and fit worker processes, so a parent killed
    with SIGKILL leaves no workers behind. ``parent_pid``, where known,
    catches a parent that died before the call.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        ok = ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)
    return ok


class _DyingProcess:
    """Mixin: the process calls :func:`die_with_parent` before its target."""

    def start(self):
        self._mgbayes_parent = os.getpid()
        super().start()

    def run(self):
        die_with_parent(getattr(self, "_mgbayes_parent", None))
        super().run()


class _ForkChain(_DyingProcess, multiprocessing.context.ForkProcess):
    pass


class _ForkServerChain(_DyingProcess, multiprocessing.context.ForkServerProcess):
    def run(self):  # the parent is the fork server, which itself ends with this process
        die_with_parent()
        multiprocessing.context.ForkServerProcess.run(self)


class _SpawnChain(_DyingProcess, multiprocessing.context.SpawnProcess):
    pass


class _ForkContext(multiprocessing.context.ForkContext):
    Process = _ForkChain


class _ForkServerContext(multiprocessing.context.ForkServerContext):
    Process = _ForkServerChain


class _SpawnContext(multiprocessing.context.SpawnContext):
    Process = _SpawnChain


def chain_context():
    """A multiprocessing context (this platform's start method) whose processes die with their parent.

    Passed to ``pm.sample(mp_ctx=...)`` so NUTS chain processes never outlive the run.
    """
    method = multiprocessing.get_start_method()
    return {"fork": _ForkContext, "forkserver": _ForkServerContext, "spawn": _SpawnContext}[method]()


class FitError(MgbayesError):
    """A parallel fit failed after all its retries."""


def map_fits(tasks, *, scheduler=None, workers=None, retries=1, log=print, on_result=None):
    """Run ``tasks`` and return ``{name: result}`` in the order of ``tasks``.

    Parameters
    ----------
    tasks : dict
        Name → ``(function, kwargs)``; ``function`` must be importable by
        name (module level) so worker processes can run it.
    scheduler : {None, "serial", "processes", "local"} or str, optional
        Where to run (see the module docstring); any other string is a
        Dask scheduler address.
    workers : int, optional
        Worker processes for the process pool or a ``LocalCluster``
        (default: the number of CPUs, at most the number of tasks).
    retries : int
        How often a failed task is run again before :class:`FitError`.
    log : callable
        Receives one progress line per finished task.
    on_result : callable, optional
        ``on_result(name, result)``, called in this process as each result
        arrives, while the other tasks go on running. What it raises ends
        the run (pending tasks are cancelled) and is raised here.

    Returns
    -------
    dict
    """
    tasks = dict(tasks)
    if not tasks:
        return {}
    workers = max(1, min(workers or cpus(), len(tasks)))
    progress = _Progress(len(tasks), log, on_result)
    if scheduler == "serial":
        results = _serial(tasks, retries, progress)
    elif scheduler in (None, "processes"):
        results = _pool(tasks, workers, retries, progress)
    else:
        results = _dask(tasks, scheduler, workers, retries, progress)
    return {name: results[name] for name in tasks}


class _Progress:
    """Logs each finished task and hands its result to ``on_result``."""

    def __init__(self, total, log, on_result=None):
        self.total, self.log, self.done, self.start = total, log, 0, time.perf_counter()
        self.on_result = on_result

    def __call__(self, name, result, note="done"):
        self.done += 1
        self.log(f"  [{self.done}/{self.total}] {name}: {note} ({time.perf_counter() - self.start:.1f} s elapsed)")
        if self.on_result is not None:
            self.on_result(name, result)


def _failed(name, err, retries):
    return FitError(f"fit {name} failed after {retries + 1} attempt(s): {type(err).__name__}: {err}")


def _serial(tasks, retries, progress):
    out = {}
    for name, (function, kwargs) in tasks.items():
        for attempt in range(retries + 1):
            try:
                out[name] = function(**kwargs)
                break
            except MgbayesError:
                raise  # a user mistake: the same again on a retry, and its message names the fix
            except Exception as err:  # noqa: BLE001 - retried, then reported with the task's name
                if attempt == retries:
                    raise _failed(name, err, retries) from err
        progress(name, out[name])
    return out


def _pool(tasks, workers, retries, progress):
    out, attempts = {}, dict.fromkeys(tasks, 0)
    with ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        running = {pool.submit(function, **kwargs): name for name, (function, kwargs) in tasks.items()}
        try:
            while running:
                future = next(as_completed(running))
                name = running.pop(future)
                try:
                    out[name] = future.result()
                except MgbayesError:
                    raise  # a user mistake: the same again on a retry, and its message names the fix
                except Exception as err:  # noqa: BLE001 - retried, then reported with the task's name
                    attempts[name] += 1
                    if attempts[name] > retries:
                        raise _failed(name, err, retries) from err
                    function, kwargs = tasks[name]
                    running[pool.submit(function, **kwargs)] = name
                    continue
                progress(name, out[name])
        except BaseException:  # a failure, on_result's error or Ctrl-C: no task starts after it
            for f in running:
                f.cancel()
            raise
    return out


def _dask(tasks, scheduler, workers, retries, progress):
    try:
        from distributed import Client, LocalCluster
        from distributed import as_completed as dask_completed
    except ImportError:
        raise MgbayesError("scheduler = %r needs Dask: pip install 'mgbayes[cluster]'" % scheduler) from None
    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as err:
            raise MgbayesError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from None
    try:
        futures = {client.submit(function, **kwargs, key=f"mgbayes-fit-{name}-{os.getpid()}-{time.time_ns()}",
                                 retries=retries, pure=False): name
                   for name, (function, kwargs) in tasks.items()}
        out = {}
        for future in dask_completed(futures):
            name = futures[future]
            try:
                out[name] = future.result()
            except Exception as err:  # noqa: BLE001 - Dask has retried already
                raise _failed(name, err, retries) from err
            progress(name, out[name])
        return out
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
