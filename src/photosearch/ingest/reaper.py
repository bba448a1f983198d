"""Ends the local Ray runtime that `index --cluster auto` started once its driver is gone, however it ended.

Ray ties most of that runtime to the driver (the GCS and the raylet die with it), but the raylet's agents first try
to report the raylet's death to the GCS, which died too, and wait out a 60 s timeout before they exit: a SIGKILLed
driver would leave them behind for a minute, holding memory and ports. The driver starts this process with a pipe on
its stdin (`python -m photosearch.ingest.reaper DRIVER_PID`). While the driver lives it notes the driver's Ray
processes (pid and start time, so a reused pid is never touched); when the pipe closes — the driver shut Ray down and
closed it, or died — it ends those still running.
"""

from __future__ import annotations

import sys
import threading

import psutil

POLL = 0.5  # seconds between looks at the driver's processes (Ray starts its agents and workers within seconds)
GRACE = 3.0  # seconds between SIGTERM and SIGKILL


def is_ray(p: psutil.Process) -> bool:
    """A process of the Ray runtime: its servers, its agents and workers (`ray::…`), its Python helpers."""
    try:
        if p.name() in ("gcs_server", "raylet"):
            return True
        cmd = p.cmdline()
    except psutil.Error:
        return False
    return bool(cmd) and (cmd[0].startswith("ray::") or any("/ray/" in a for a in cmd[:3]))


def _note(driver_pid: int, seen: dict[int, psutil.Process], done: threading.Event) -> None:
    try:
        driver = psutil.Process(driver_pid)
    except psutil.Error:
        return
    while not done.is_set():
        try:
            for child in driver.children(recursive=True):
                if child.pid not in seen and is_ray(child):
                    seen[child.pid] = child
        except psutil.Error:
            return  # the driver is gone
        done.wait(POLL)


def end(procs: list[psutil.Process]) -> None:
    """SIGTERM, then SIGKILL after `GRACE`, for those of `procs` that are still the processes they were."""
    alive = [p for p in procs if p.is_running()]
    for p in alive:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, left = psutil.wait_procs(alive, timeout=GRACE)
    for p in left:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(left, timeout=GRACE)


def main(argv: list[str]) -> int:
    seen: dict[int, psutil.Process] = {}
    done = threading.Event()
    watcher = threading.Thread(target=_note, args=(int(argv[0]), seen, done), daemon=True)
    watcher.start()
    sys.stdin.buffer.read()  # returns at EOF: the driver closed the pipe or died
    done.set()
    watcher.join()
    end(list(seen.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
