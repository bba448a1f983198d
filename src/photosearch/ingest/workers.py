"""A small process pool for the decode stage that survives a worker being killed.

Why not `ProcessPoolExecutor`: all its workers share one result pipe, so a worker SIGKILLed (e.g. by the
OOM killer) in the middle of sending a result leaves a torn message and a held lock, and the whole pool
hangs. Here every worker has its own pipe: a dead worker only loses its own tasks (reported as transient
`worker died` errors, retried next run) and is replaced. An I/O thread moves tasks and results so workers
keep decoding while the main thread runs the model.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing as mp
import queue
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from photosearch.ingest import decode
from photosearch.ingest.decode import FileError, FileResult, FileTask

log = logging.getLogger(__name__)

PREFETCH = 2  # tasks queued per worker, so it never waits for the next one


def _worker_main(conn: Connection, preprocessor: Any, thumbs_dir: str) -> None:
    decode.init_worker(preprocessor, thumbs_dir)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if msg is None:
            return
        seq, task = msg
        try:
            result: FileResult | FileError = decode.run_task(task)
        except Exception as exc:  # noqa: BLE001 - never let one file kill the worker
            result = FileError(task.path, decode.CORRUPT, f"{type(exc).__name__}: {exc}")
        conn.send((seq, result))


@dataclass
class _Worker:
    proc: Any
    conn: Connection
    outstanding: dict[int, FileTask] = field(default_factory=dict)


class WorkerPool:
    def __init__(self, workers: int, preprocessor: Any, thumbs_dir: Path) -> None:
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        self._ctx = mp.get_context(method)
        if method == "forkserver":
            self._ctx.set_forkserver_preload(["photosearch.ingest.decode"])
        self._args = (preprocessor, str(thumbs_dir))
        self._tasks: queue.Queue[tuple[int, FileTask]] = queue.Queue()
        self._results: queue.Queue[FileResult | FileError] = queue.Queue()
        self._seq = itertools.count()
        self._closing = threading.Event()
        self._error: BaseException | None = None
        self._workers = [self._spawn() for _ in range(max(1, workers))]
        self._thread = threading.Thread(target=self._run, name="ingest-io", daemon=True)
        self._thread.start()

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_worker_main, args=(child, *self._args), daemon=True)
        proc.start()
        child.close()  # only the worker holds its end: its death means EOF here
        return _Worker(proc, parent)

    # ---- main-thread API -----------------------------------------------------------------------

    def submit(self, task: FileTask) -> None:
        self._tasks.put((next(self._seq), task))

    def get(self, timeout: float | None = None) -> FileResult | FileError | None:
        """The next result (blocking up to `timeout`; None on timeout)."""
        while True:
            try:
                return self._results.get(timeout=0.2 if timeout is None else timeout)
            except queue.Empty:
                if self._error is not None:
                    raise RuntimeError("the ingest I/O thread failed") from self._error
                if timeout is not None:
                    return None

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=10)
        for w in self._workers:
            try:
                w.conn.send(None)
            except OSError:
                pass
        for w in self._workers:
            w.proc.join(timeout=5)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join()
            w.conn.close()

    # ---- I/O thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._closing.is_set():
                self._dispatch()
                busy = [w for w in self._workers if w.outstanding]
                if not busy:
                    try:
                        item = self._tasks.get(timeout=0.05)
                    except queue.Empty:
                        continue
                    self._send(self._idlest(), *item)
                    continue
                ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=0.05)
                for w in busy:
                    if w.conn in ready:
                        self._receive(w)
                    elif w.proc.sentinel in ready:
                        self._replace(w)
        except BaseException as exc:  # noqa: BLE001 - surfaced to the main thread by get()
            self._error = exc

    def _idlest(self) -> _Worker:
        return min(self._workers, key=lambda w: len(w.outstanding))

    def _dispatch(self) -> None:
        while True:
            w = self._idlest()
            if len(w.outstanding) >= PREFETCH:
                return
            try:
                seq, task = self._tasks.get_nowait()
            except queue.Empty:
                return
            self._send(w, seq, task)

    def _send(self, w: _Worker, seq: int, task: FileTask) -> None:
        w.outstanding[seq] = task
        try:
            w.conn.send((seq, task))
        except OSError:
            self._replace(w)

    def _receive(self, w: _Worker) -> None:
        try:
            seq, result = w.conn.recv()
        except (EOFError, OSError):  # died, possibly mid-message
            self._replace(w)
            return
        w.outstanding.pop(seq, None)
        self._results.put(result)

    def _replace(self, w: _Worker) -> None:
        log.warning("an ingest worker died (exit code %s); starting another", w.proc.exitcode)
        for task in w.outstanding.values():
            self._results.put(FileError(task.path, decode.WORKER_DIED, "a worker process died while decoding"))
        w.outstanding.clear()
        w.conn.close()
        w.proc.join(timeout=1)
        self._workers[self._workers.index(w)] = self._spawn()
