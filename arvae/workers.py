"""Worker processes for the app's heavy actions, each under a time and a memory budget.

The app answers light actions (sliders, encodings, examples) in its own process and hands heavy
ones (surfaces, traversals, comparisons, imports) to :class:`WorkerPool`: one process per core,
each with its own explorers (:func:`arvae.explorer.explorers`, models loaded once per worker, on
first use, and kept). A call names what to run -- an :class:`~arvae.explorer.Explorer` method
(``"surface"``) or a library function taking the explorer first (``"arvae.music.media:traversal"``)
-- with picklable arguments, so that the same call runs in a worker or, without a pool, in the
caller (:func:`run`). A worker that crashes, or goes over its CPU time or memory, is killed and
replaced; its caller gets a :class:`WorkerError` saying what happened, and the pool keeps serving.
No Gradio here.
"""
from __future__ import annotations

import importlib
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

log = logging.getLogger("arvae.workers")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


class WorkerError(RuntimeError):
    """A heavy action could not be answered by its worker; the message says why, for a visitor."""


@dataclass(frozen=True)
class Budget:
    """What one call may use: CPU seconds of its worker (wall time: ``wall_factor`` times that, so a
    worker that waits or sleeps is stopped too) and the worker's resident memory in MB."""

    name: str  # "heavy action", "import": how a message names the call
    cpu_s: float
    memory_mb: float
    wall_factor: float = 3.0


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


HEAVY = Budget("heavy action", _env_float("ARVAE_HEAVY_CPU_S", 30), _env_float("ARVAE_WORKER_MEMORY_MB", 1536))
IMPORT = Budget("import", _env_float("ARVAE_IMPORT_CPU_S", 8), _env_float("ARVAE_WORKER_MEMORY_MB", 1536))


def pool_size() -> int:
    """Worker processes for this machine: ``$ARVAE_WORKERS``, else one per usable core (0: none,
    heavy actions run in the app's own threads)."""
    if "ARVAE_WORKERS" in os.environ:
        return max(0, int(os.environ["ARVAE_WORKERS"]))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def resolve(target: str, allowed=("arvae.",)):
    """The function ``"package.module:function"`` names, from the packages ``allowed``."""
    module, _, name = target.partition(":")
    if not module.startswith(tuple(allowed)):
        raise ValueError(f"{target!r} is not a function of {', '.join(allowed)}")
    return getattr(importlib.import_module(module), name)


def execute(explorer, target: str, args: tuple, allowed=("arvae.",)):
    """Run ``target`` on ``explorer``: a method name, or ``module:function`` called as ``function(explorer, *args)``."""
    if ":" in target:
        return resolve(target, allowed)(explorer, *args)
    return getattr(explorer, target)(*args)


# ------------------------------------------------------------------------------ one worker

WORKER_NICENESS = int(os.environ.get("ARVAE_WORKER_NICENESS", 5))


def _serve(conn, root, torch_threads: int, allowed) -> None:
    """A worker's life: build its explorers (cheap; models load on first use and stay), then answer
    ``(dataset key, target, args)`` with ``("ok", result)`` or ``("error", exception)``. Workers run
    :data:`WORKER_NICENESS` steps nicer than the app, so that when every core is busy with heavy
    actions the app's own light answers (sliders) still get a core at once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the app stops the pool
    os.nice(WORKER_NICENESS)
    import torch

    from arvae.explorer import explorers

    torch.set_num_threads(torch_threads)
    by_key = explorers(root)
    conn.send(("ready", None))  # budgets count from here: a fresh interpreter's imports are not the call's
    while True:
        try:
            key, target, args = conn.recv()
        except (EOFError, OSError):  # the app has gone
            return
        try:
            reply = ("ok", execute(by_key[key], target, args, allowed))
        except Exception as error:  # the caller re-raises it, as if the call had run there
            reply = ("error", error)
        try:
            conn.send(reply)
        except Exception as error:  # an unpicklable result or exception
            conn.send(("error", WorkerError(f"its answer could not be sent back ({type(error).__name__}: {error})")))


class _Worker:
    """One worker: ``python -m arvae.workers`` (a fresh interpreter that imports neither the app nor
    Gradio), talking over a socket pair."""

    def __init__(self, root, torch_threads: int, allowed):
        ours, theirs = socket.socketpair()
        project = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [project, os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "arvae.workers", str(theirs.fileno()), str(root or ""), str(torch_threads),
             ",".join(allowed)], pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self.conn = Connection(ours.detach())
        self.ready = False

    def _wait_until_ready(self, timeout_s: float = 300.0) -> None:
        if not self.ready and self.conn.poll(timeout_s):
            self.ready = self.conn.recv()[0] == "ready"
        if not self.ready:
            raise OSError("the worker did not start")

    def _stat(self) -> tuple[float, float]:
        """(CPU seconds, resident MB) of the worker, from /proc (0, 0 where there is none)."""
        try:
            with open(f"/proc/{self.process.pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            with open(f"/proc/{self.process.pid}/statm") as f:
                resident_pages = int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            return 0.0, 0.0
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS, resident_pages * _PAGE_BYTES / 2**20

    def call(self, key: str, target: str, args: tuple, budget: Budget):
        """Send one call and wait for its answer, watching the budget; ``WorkerError`` when the
        worker dies or goes over it (then it is dead: the pool replaces it)."""
        try:
            self._wait_until_ready()
            cpu_start, started = self._stat()[0], time.monotonic()
            self.conn.send((key, target, args))
            while not self.conn.poll(0.05):
                cpu, memory = self._stat()
                if memory > budget.memory_mb:
                    self.kill()
                    raise WorkerError(f"the {budget.name} used more than {budget.memory_mb:,.0f} MB of memory, the "
                                      f"limit per {budget.name}; it was stopped")
                if cpu - cpu_start > budget.cpu_s or time.monotonic() - started > budget.cpu_s * budget.wall_factor:
                    self.kill()
                    raise WorkerError(f"the {budget.name} took longer than its limit of {budget.cpu_s:g} s of "
                                      "computing time; it was stopped")
                if not self.alive():
                    break
            status, value = self.conn.recv()
        except (EOFError, OSError):  # the worker died (or the pool was closed under it)
            self.kill()
            raise WorkerError(f"the worker process running the {budget.name} stopped unexpectedly (exit code "
                              f"{self.process.poll()}); it was replaced, try again") from None
        if status == "error":
            raise value
        return value

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        self.process.wait(5)
        self.conn.close()


# ------------------------------------------------------------------------------ the pool

class WorkerPool:
    """``size`` worker processes (started by :meth:`start`; fresh interpreters: no state of the app
    is copied); :meth:`call` waits for a free one. Thread-safe: one call per worker at a time."""

    def __init__(self, size: int, root=None, torch_threads: int = 1, allowed=("arvae.",)):
        self.size, self.root, self.torch_threads, self.allowed = size, root, torch_threads, tuple(allowed)
        self._idle: queue.Queue = queue.Queue()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self.closed = False
        self.replaced = 0  # workers killed and replaced (crashes and budgets)

    def start(self) -> "WorkerPool":
        for _ in range(self.size):
            self._idle.put(self._new_worker())
        return self

    def _new_worker(self) -> _Worker:
        worker = _Worker(self.root, self.torch_threads, self.allowed)
        with self._lock:
            self._workers = [w for w in self._workers if w.alive()] + [worker]
        return worker

    def call(self, key: str, target: str, *args, budget: Budget = HEAVY):
        """Run ``target`` (see :func:`execute`) on the worker's explorer of dataset ``key``."""
        while True:
            if self.closed:
                raise WorkerError("the app is shutting down")
            try:
                worker = self._idle.get(timeout=0.5)
                break
            except queue.Empty:
                continue
        try:
            return worker.call(key, target, args, budget)
        finally:
            if not worker.alive() and not self.closed:
                self.replaced += 1
                log.warning("worker %s was stopped (budget or crash); starting a new one", worker.process.pid)
                worker = self._new_worker()
            self._idle.put(worker)

    def pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._workers if w.alive()]

    def close(self) -> None:
        """Kill every worker at once (a stuck one too): the app stops within seconds."""
        self.closed = True
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.kill()


_POOL: WorkerPool | None = None


def install(pool: WorkerPool | None) -> None:
    """Make :func:`run` hand its calls to ``pool`` (None: run them in the caller)."""
    global _POOL
    _POOL = pool


def run(explorer, target: str, *args, budget: Budget = HEAVY):
    """``target`` (an Explorer method name or ``module:function``) on ``explorer``'s dataset: in a
    worker of the installed pool, else here."""
    if _POOL is None:
        return execute(explorer, target, args)
    return _POOL.call(explorer.spec.key, target, *args, budget=budget)


if __name__ == "__main__":  # a worker: python -m arvae.workers FD ROOT TORCH_THREADS ALLOWED
    _fd, _root, _threads, _allowed = sys.argv[1:5]
    _serve(Connection(int(_fd)), _root or None, int(_threads), tuple(_allowed.split(",")))
