"""Where tasks run: this machine's processes (joblib, ``--jobs N``) or a dask.distributed cluster
(``--scheduler tcp://HOST:PORT`` for a running one, ``--scheduler local:N`` to start one here).

Every task is a pure function of its arguments (its randomness comes from its own seed), so the
results are the same on every path; they are returned in submission order. Large objects every task
needs (the raw image, the model) are sent to each worker once (:meth:`Executor.share`).

A dask worker that dies has its tasks run again elsewhere by the scheduler; the death is reported
on the way (``progress``); when no worker is left for :data:`NO_WORKER_TIMEOUT_S`, or a task has
killed every worker it was tried on (the scheduler's ``allowed-failures``), the run stops with one
line instead of waiting for ever.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
import time
import uuid

from joblib import Parallel, delayed

from ..errors import NoisestatError

__all__ = ["Executor", "JoblibExecutor", "DaskExecutor", "Pending", "make_executor", "EngineError",
           "parse_scheduler", "watch_workers"]

# A cluster with no worker for this long is given up on.
NO_WORKER_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 15.0


def _identity(obj):
    return obj


def _version() -> str:
    from .. import __version__

    return __version__


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 << 20   # glibc's own ceiling for it on 64-bit systems
_TRIM_DURING_TASKS = 1 << 30
_libc = None  # set in a worker process once its malloc is tuned for tasks
_malloc_looked_at = False


def _tune_malloc_for_tasks() -> None:
    """In a process started with a fixed ``MALLOC_TRIM_THRESHOLD_`` (dask's nannies set 64 KiB for
    their workers, so that freed memory goes back to the system at once), let glibc keep and reuse
    freed memory while a task runs; :func:`_after_task` gives it back when the task ends.

    A fixed trim threshold also turns off glibc's sliding mmap threshold, so every array over
    128 KiB (each feature plane, each tree's leaf indices) is a fresh mapping whose pages fault in
    one by one: measured on a 1024 x 1024 replica, 3.3 s against 2.1 s with glibc's defaults. No
    library or dask setting does this per task, hence ctypes. Elsewhere (other C libraries, no
    such variable) nothing changes."""
    global _libc, _malloc_looked_at
    if _malloc_looked_at:  # once per process
        return
    _malloc_looked_at = True
    if not sys.platform.startswith("linux") or (
            "MALLOC_TRIM_THRESHOLD_" not in os.environ and "MALLOC_MMAP_THRESHOLD_" not in os.environ):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        tuned = (libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1
                 and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_DURING_TASKS) == 1)
    except (OSError, AttributeError):  # not glibc
        return
    if tuned:
        _libc = libc


def _after_task() -> None:
    if _libc is not None:
        _libc.malloc_trim(0)


def _warm_worker() -> None:
    """A dask worker's first task, sent to each worker as the client connects: unpickling it imports
    noisestat (NumPy, SciPy, scikit-learn, scikit-image: about 2 s), which the worker then does
    while this process reads and trains instead of in the run's first real task."""
    _tune_malloc_for_tasks()


def _dask_task(fn, *args):
    """A task as a dask worker runs it: ``fn(*args)`` with malloc tuned (:func:`_tune_malloc_for_tasks`)."""
    _tune_malloc_for_tasks()
    try:
        return fn(*args)
    finally:
        _after_task()


def _started(started) -> list:
    """Call the ``started`` hook of :meth:`Executor.map`; the listeners it returns (none, or one
    object with ``task_done(done, total)``)."""
    if started is None:
        return []
    listener = started()
    return [listener] if callable(getattr(listener, "task_done", None)) else []


class EngineError(NoisestatError):
    """A cluster that cannot be reached, or whose workers died."""


def parse_scheduler(scheduler: str | None) -> tuple[str, object] | None:
    """``None``, ``("local", n_workers)`` or ``("address", "tcp://host:port")``; a one-line error otherwise."""
    if scheduler is None:
        return None
    text = str(scheduler).strip()
    if text.startswith("local:"):
        count = text[len("local:"):]
        if not count.isdigit() or int(count) < 1:
            raise EngineError(f"--scheduler local:N needs a worker count N >= 1; got {scheduler!r}")
        return "local", int(count)
    if "://" in text and text.split("://", 1)[1]:
        return "address", text
    raise EngineError(f"--scheduler must be tcp://HOST:PORT (a running dask scheduler) or local:N; got {scheduler!r}")


class Pending:
    """Tasks on their way (:meth:`Executor.start`): :meth:`result` waits for them and returns their
    results in submission order (once; later calls return the same list)."""

    def __init__(self, collect):
        self._collect = collect
        self._results = None

    def result(self) -> list:
        if self._results is None:
            self._results = self._collect()
        return self._results


class Executor:
    """Runs tasks, returns results in submission order."""

    workers: int = 1
    description: dict = {}

    def share(self, obj):
        """A handle to pass to tasks instead of ``obj`` (sent once to each worker)."""
        return obj

    def map(self, fn, arguments: list[tuple], names: list[str], progress=None, started=None) -> list:
        """``fn(*args)`` for each of ``arguments``, in that order. ``progress(name, done, total)``
        after each task; ``started()``, once, as soon as the tasks are on their way: work the caller
        does there (in this process) overlaps theirs. What ``started()`` returns, if it has a
        ``task_done(done, total)`` method (the :class:`~noisestat.engine._estimate.EstimateCheck` of
        the estimate said there), hears of each finished task too."""
        raise NotImplementedError

    def start(self, fn, arguments: list[tuple], names: list[str], progress=None) -> Pending:
        """Like :meth:`map`, but returns as soon as the tasks are on their way; the caller's work
        until :meth:`Pending.result` overlaps theirs where the executor runs them elsewhere. Here,
        by default, they run at once (a failure then surfaces at once too)."""
        results = self.map(fn, arguments, names, progress)
        return Pending(lambda: results)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class JoblibExecutor(Executor):
    """``jobs`` workers on this machine (1: in this process): threads of this process (``threads``)
    or worker processes (joblib's loky backend).

    Threads share one interpreter and every array (no copy of the image, the model or the raw
    labels per worker, no second Python of ~200 MB per worker); they run in parallel as long as the
    tasks' heavy parts release the GIL, as noisestat's forest does (its scipy filters, scikit-learn's
    tree traversal and the NumPy work between them): on 2 cores, 1024 x 1024 with 14 images took
    the same wall time in threads as in processes. Processes suit predictors whose Python code holds
    the GIL."""

    def __init__(self, jobs: int = 1, threads: bool = False):
        self.jobs = jobs
        self.threads = bool(threads)
        self.workers = jobs if jobs > 0 else max(1, (os.cpu_count() or 1) + 1 + jobs)
        self.description = {"engine": "joblib", "jobs": jobs,
                            "workers_are": "threads" if self.threads or self.workers == 1 else "processes"}

    def start(self, fn, arguments, names, progress=None) -> Pending:
        """With threads (or one worker), the tasks run in a background thread of this process, so
        that the caller's own work until :meth:`Pending.result` (the training) fills the cores they
        leave idle; a daemon thread, so that an interrupted run does not wait for them. With worker
        processes they run at once."""
        if not (self.threads or self.workers == 1):
            return super().start(fn, arguments, names, progress)
        outcome: dict = {}

        def run():
            try:
                outcome["results"] = self.map(fn, arguments, names, progress)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller by Pending.result
                outcome["error"] = exc

        thread = threading.Thread(target=run, name="noisestat-tasks", daemon=True)
        thread.start()

        def collect():
            thread.join()
            if "error" in outcome:
                raise outcome.pop("error")
            return outcome["results"]

        return Pending(collect)

    def map(self, fn, arguments, names, progress=None, started=None):
        from joblib.externals.loky.process_executor import BrokenProcessPool, TerminatedWorkerError

        results = []
        tasks = (delayed(fn)(*args) for args in arguments)
        try:
            parallel = Parallel(n_jobs=self.jobs, return_as="generator", prefer="threads" if self.threads else None)
            outputs = parallel(tasks)  # several workers: the first tasks are dispatched when this returns
            listeners = _started(started)
            for i, result in enumerate(outputs):
                results.append(result)
                if progress is not None:
                    progress(names[i], i + 1, len(arguments))
                for listener in listeners:
                    listener.task_done(i + 1, len(arguments))
        except TerminatedWorkerError as exc:
            running = names[len(results)] if len(results) < len(names) else "a task"
            raise EngineError(f"a worker process died while running {running} or a task after it (killed, or out "
                              f"of memory: try fewer --jobs or a smaller --tile): {str(exc).splitlines()[0][:120]}") from None
        except BrokenProcessPool as exc:
            # a task that failed to unpickle in a worker (e.g. a --predictor-python file changed since the
            # run began, which the worker refuses): the worker's own one-line reason, not joblib's traceback
            raise _worker_error(exc, names[len(results)] if len(results) < len(names) else "a task") from None
        return results


def _worker_error(exc: BaseException, running: str) -> NoisestatError:
    """The error a worker raised while receiving a task, from the remote traceback joblib keeps as the
    broken pool's cause: noisestat's own error (its class and line) when it is one, else an EngineError."""
    import re

    from .. import errors

    text = ""
    link = exc
    while link is not None and len(text) < 200_000:
        text += str(link) + "\n"
        link = link.__cause__ or link.__context__
    found = re.findall(r"noisestat\.errors\.(\w+): (.+)", text)
    for name, message in reversed(found):
        cls = getattr(errors, name, None)
        if isinstance(cls, type) and issubclass(cls, NoisestatError):
            return cls(message.strip())
    first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
    return EngineError(f"a worker could not take {running}: {first}")


class _ClustersStartedHere:
    """The local clusters created after this object: :meth:`abandon` closes those an interrupt left
    half-started, quietly, and drops them from distributed's own list, whose exit hook would
    otherwise fail on them with a traceback (a worker still starting cannot be closed cleanly)."""

    def __init__(self, distributed):
        from distributed.deploy.spec import SpecCluster

        self._instances = SpecCluster._instances
        self._before = set(self._instances)

    def abandon(self) -> None:
        for cluster in [c for c in list(self._instances) if c not in self._before]:
            with contextlib.suppress(BaseException):  # the interrupt is what the user sees
                cluster.close(timeout=5)
            self._instances.discard(cluster)


class DaskExecutor(Executor):
    """Tasks on a dask.distributed cluster: a running one (``address``) or a local one started here."""

    def __init__(self, scheduler: str, notice=None):
        self.notice = notice
        kind, value = parse_scheduler(scheduler)
        try:
            import distributed
        except ImportError:
            raise EngineError("--scheduler needs dask.distributed: pip install 'noisestat[dask]'") from None
        self._distributed = distributed
        self.cluster = None
        self._shared: dict = {}
        try:
            if kind == "local":
                self._abandon_on_interrupt = _ClustersStartedHere(distributed)
                # No dashboard; the scheduler's own HTTP routes (health, metrics) on a free loopback
                # port: its default, 8787, is taken by any other cluster running here (a second
                # noisestat run), which would make distributed warn on the user's terminal.
                self.cluster = distributed.LocalCluster(n_workers=value, threads_per_worker=1, processes=True,
                                                        dashboard_address="127.0.0.1:0",
                                                        scheduler_kwargs={"dashboard": False}, silence_logs=50)
                self.client = distributed.Client(self.cluster, timeout=CONNECT_TIMEOUT_S)
            else:
                self.client = distributed.Client(value, timeout=CONNECT_TIMEOUT_S)
        except (KeyboardInterrupt, SystemExit):  # Ctrl-C or SIGTERM while the cluster starts
            if kind == "local":
                self._abandon_on_interrupt.abandon()
            raise
        except (OSError, TimeoutError) as exc:
            self.close()
            raise EngineError(f"cannot reach the dask scheduler {scheduler}: {str(exc).splitlines()[0][:160]}") from None
        except RuntimeError as exc:
            if kind != "local":
                raise
            self.close()
            # The usual cause: a script that calls noisestat at its top level. Each worker process
            # starts by importing the script, and so tries to start a cluster of its own.
            raise EngineError(f"cannot start a local dask cluster of {value} workers "
                              f"({str(exc).splitlines()[0][:120]}); a Python script that starts one must make "
                              f"its noisestat call under `if __name__ == \"__main__\":` (each worker starts by "
                              f"importing the script)") from None
        self.address = self.client.scheduler.address
        names = self._worker_names()
        self.workers = max(1, len(names))
        # Each worker imports noisestat now, while this process goes on (not waited for).
        warm = uuid.uuid4().hex[:8]
        self._warm = [self.client.submit(_warm_worker, key=f"noisestat-warm-{warm}-{i}", workers=[name],
                                         allow_other_workers=True, pure=False)
                      for i, name in enumerate(sorted(names))]
        self.description = {"engine": "dask", "scheduler": scheduler if kind == "address" else f"local:{value}",
                            "workers": self.workers}

    def _worker_names(self) -> set:
        try:
            return set(self.client.scheduler_info(n_workers=-1)["workers"])
        except TypeError:  # older distributed: no n_workers argument
            return set(self.client.scheduler_info()["workers"])

    def share(self, obj):
        # A task that returns the object, rather than scattered data: its input stays with the
        # scheduler, so a worker that dies holding the object's only copy costs a recomputation,
        # not the run (scattered data would be lost with it). The same object (the raw image, for
        # the codecs and then the batch) is sent once per executor; the object is kept with its
        # handle so that its id is not reused.
        kept = self._shared.get(id(obj))
        if kept is None:
            kept = self._shared[id(obj)] = (obj, self.client.submit(_identity, obj, pure=False))
        return kept[1]

    def map(self, fn, arguments, names, progress=None, started=None):
        listeners: list = []

        def heard(name, done, total):
            if progress is not None:
                progress(name, done, total)
            for listener in listeners:
                listener.task_done(done, total)

        pending = self.start(fn, arguments, names, heard)
        listeners += _started(started)
        return pending.result()

    def start(self, fn, arguments, names, progress=None) -> Pending:
        run = uuid.uuid4().hex[:8]
        futures = [self.client.submit(_dask_task, fn, *args, key=f"noisestat-{run}-{i}", pure=False, retries=0)
                   for i, args in enumerate(arguments)]
        return Pending(lambda: self._collect(futures, names, progress))

    def _collect(self, futures, names, progress):
        """Wait for ``futures`` (reporting lost workers, giving up on an empty cluster) and return
        their results in order; the futures are released whatever happens."""
        distributed = self._distributed
        index = {f.key: i for i, f in enumerate(futures)}
        pending = set(futures)
        done_count = 0
        known = self._worker_names()
        alone_since = None
        try:
            while pending:
                try:
                    distributed.wait(list(pending), timeout=1.0, return_when="FIRST_COMPLETED")
                except TimeoutError:  # nothing finished within the second: look at the workers
                    pass
                finished = {f for f in pending if f.done()}
                pending -= finished
                finished = sorted(finished, key=lambda f: index[f.key])
                for future in finished:
                    if future.status in ("error", "cancelled", "lost"):
                        self._raise(future, names[index[future.key]])
                    done_count += 1
                    if progress is not None:
                        progress(names[index[future.key]], done_count, len(futures))
                now_workers = self._worker_names()
                lost = known - now_workers
                if lost and self.notice is not None:
                    self.notice(f"dask worker lost ({', '.join(sorted(lost))}); its tasks run again elsewhere", None)
                known = now_workers | (known - lost)
                if pending and not now_workers:
                    alone_since = alone_since or time.monotonic()
                    if time.monotonic() - alone_since > NO_WORKER_TIMEOUT_S:
                        raise EngineError(f"no dask worker left on {self.address} for {NO_WORKER_TIMEOUT_S:.0f} s; "
                                          f"{len(pending)} of {len(futures)} tasks unfinished")
                else:
                    alone_since = None
            results = []
            for future, name in zip(futures, names):
                if future.status != "finished":
                    self._raise(future, name)
                results.append(future.result())
            return results
        finally:
            for f in futures:
                f.release()

    def _raise(self, future, name):
        try:
            exc = future.exception()
        except Exception as cancelled:  # noqa: BLE001 - a cancelled future raises instead of returning
            raise EngineError(f"dask lost {name}: {type(cancelled).__name__}: {str(cancelled).splitlines()[0][:160]}"
                              if str(cancelled) else f"dask lost {name} ({type(cancelled).__name__})") from None
        if type(exc).__name__ == "KilledWorker":
            raise EngineError(f"dask workers died running {name} each time it was tried (out of memory?); "
                              f"see the workers' logs") from None
        if isinstance(exc, ImportError):  # a worker without noisestat, or without the extra a task needs
            raise EngineError(f"a dask worker cannot run {name}: {type(exc).__name__}: {str(exc).splitlines()[0][:160]} "
                              f"(every worker needs this noisestat, {_version()}, with the same extras)") from None
        raise exc

    def close(self):
        for thing in (getattr(self, "client", None), getattr(self, "cluster", None)):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # noqa: BLE001 - closing a dead cluster must not hide the real error
                    pass


def make_executor(jobs: int = 1, scheduler: str | None = None, notice=None, threads: bool = False) -> Executor:
    """The executor for ``jobs`` (this machine: threads when ``threads``, else processes) or
    ``scheduler`` (a dask cluster); ``notice(message, None)`` hears of lost workers."""
    if scheduler is not None:
        return DaskExecutor(scheduler, notice=notice)
    return JoblibExecutor(jobs, threads=threads)


def _exit_with_parent(parent_pid: int) -> None:
    """Started in every joblib worker process: exit as soon as the noisestat process that started it
    is gone (the worker's parent id changes), so that no worker outlives a killed run.

    loky's workers otherwise wait for work up to their idle timeout (300 s) after their parent was
    killed with SIGKILL; loky has no option to follow the parent, hence this watch.
    """
    def watch():
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="noisestat-parent-watch", daemon=True).start()


def watch_workers() -> None:
    """Make joblib's default process backend start :func:`_exit_with_parent` in its workers.

    The default backend is replaced (same name, same behaviour plus the initializer) rather than
    set with ``parallel_config``: an explicit backend would override the ``prefer="threads"`` hint
    with which scikit-learn's forest trains on threads.
    """
    from joblib import parallel as jp
    from joblib import register_parallel_backend
    from joblib._parallel_backends import LokyBackend

    if getattr(jp.BACKENDS.get("loky"), "noisestat_watch", False):
        return
    parent = os.getpid()

    class WatchedLokyBackend(LokyBackend):
        noisestat_watch = True

        def __init__(self, *args, **kwargs):
            kwargs.setdefault("initializer", _exit_with_parent)
            kwargs.setdefault("initargs", (parent,))
            super().__init__(*args, **kwargs)

    register_parallel_backend("loky", WatchedLokyBackend)
