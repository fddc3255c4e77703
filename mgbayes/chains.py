"""NUTS chains that advance together, a stretch at a time, so a fit can stop once its draws suffice.

``pm.sample`` runs every chain to its last draw before anything can be
checked, and with the chains one after another in one process (a fit on a
worker of :mod:`mgbayes.study`'s pool) the checks that need all chains
(R-hat, ESS) cannot even be made part way. Here every chain is PyMC's own
chain loop (the generator ``pm.sample`` runs for each chain) with its own
step method and random generator, driven from outside: :meth:`Chains.advance`
runs each chain a given number of iterations and hands back what it drew,
in this process or in worker processes (:class:`ChainProcesses`). A chain's
draws depend only on its step method, start and generator, so they are the
same whichever runs it, and a chain stopped after ``n`` draws holds exactly
the first ``n`` draws of a longer one.
"""

import traceback

from pymc.sampling.mcmc import _iter_sample

from . import parallel


class _Records:
    """Stands in for PyMC's trace in its chain loop: keeps each iteration's record until :meth:`take`."""

    def __init__(self):
        self.items = []

    def record(self, point, stats, *, in_warmup):
        self.items.append((point, stats, in_warmup))

    def close(self):
        pass

    def take(self):
        items, self.items = self.items, []
        return items


class Chains:
    """NUTS chains run in this process, one after another at each :meth:`advance`.

    Parameters
    ----------
    steps : list
        One step method per chain (they hold each chain's adaptation).
    starts : list of dict
        Each chain's initial point (value variables, unconstrained space).
    rngs : list of numpy.random.Generator
        Each chain's generator.
    tune, total : int
        Tuning iterations, and iterations in all (tuning included).
    """

    def __init__(self, steps, starts, rngs, *, tune, total):
        self.records = [_Records() for _ in steps]
        self.loops = [_iter_sample(draws=total, step=step, start=start, trace=records, chain=chain, tune=tune, rng=rng)
                      for chain, (step, start, rng, records) in enumerate(zip(steps, starts, rngs, self.records))]

    def advance(self, n):
        """Run every chain ``n`` iterations more; returns, per chain, a list of ``(point, stats, in_warmup)``."""
        out = []
        for loop, records in zip(self.loops, self.records):
            for _ in range(n):
                next(loop)
            out.append(records.take())
        return out

    def close(self):
        for loop in self.loops:
            loop.close()


def _serve(conn, steps, starts, rngs, tune, total):
    """A chain worker: advance its chains as often as asked (``None`` ends it), send back the records or the error."""
    chains = Chains(steps, starts, rngs, tune=tune, total=total)
    try:
        while (n := conn.recv()) is not None:
            try:
                conn.send(("ok", chains.advance(n)))
            except Exception as err:  # noqa: BLE001 - handed to the parent, which raises it
                try:
                    conn.send(("error", err))
                except Exception:  # noqa: BLE001 - an error that does not pickle goes as text
                    conn.send(("error", RuntimeError(traceback.format_exc())))
                return
    except (EOFError, KeyboardInterrupt):  # the parent went away or the run was interrupted
        return
    finally:
        chains.close()


class ChainProcesses:
    """The same chains as :class:`Chains`, dealt to ``processes`` worker processes (chain ``i`` to worker ``i % processes``).

    The workers die with this process (:func:`mgbayes.parallel.chain_context`)
    and are ended by :meth:`close`.
    """

    def __init__(self, steps, starts, rngs, *, tune, total, processes):
        ctx = parallel.chain_context()
        self.groups = [list(range(k, len(steps), processes)) for k in range(min(processes, len(steps)))]
        self.conns, self.workers = [], []
        for group in self.groups:
            parent, child = ctx.Pipe()
            worker = ctx.Process(target=_serve, daemon=True,
                                 args=(child, [steps[i] for i in group], [starts[i] for i in group],
                                       [rngs[i] for i in group], tune, total))
            worker.start()
            child.close()
            self.conns.append(parent)
            self.workers.append(worker)
        self.n_chains = len(steps)

    def advance(self, n):
        """As :meth:`Chains.advance`, the workers running their chains at the same time."""
        for conn in self.conns:
            conn.send(n)
        out = [None] * self.n_chains
        for conn, group in zip(self.conns, self.groups):
            try:
                status, value = conn.recv()
            except EOFError:
                raise RuntimeError("a chain worker process ended unexpectedly") from None
            if status == "error":
                raise value
            for chain, records in zip(group, value):
                out[chain] = records
        return out

    def close(self):
        for conn in self.conns:
            try:
                conn.send(None)
            except OSError:
                pass
        for worker in self.workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.terminate()
                worker.join()
        for conn in self.conns:
            conn.close()
