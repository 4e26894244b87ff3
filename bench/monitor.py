"""CPU time and peak resident memory of the processes a run starts, read with psutil."""

from __future__ import annotations

import threading
from types import TracebackType

import psutil


class ProcessMonitor:
    """Samples the resident set size of every watched process in a background thread
    (peak RSS is the largest sample), and reads CPU time on demand."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self._processes: dict[str, psutil.Process] = {}
        self._peak_rss: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)

    def watch(self, name: str, pid: int) -> None:
        with self._lock:
            self._processes[name] = psutil.Process(pid)
        self._sample()

    def cpu_seconds(self, prefix: str = "") -> float:
        """User plus system CPU time of the watched processes whose name starts with
        ``prefix``, so far."""
        total = 0.0
        with self._lock:
            processes = [p for name, p in self._processes.items() if name.startswith(prefix)]
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def peak_rss(self) -> dict[str, int]:
        self._sample()
        with self._lock:
            return dict(self._peak_rss)

    def _sample(self) -> None:
        with self._lock:
            for name, process in self._processes.items():
                try:
                    rss = process.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                self._peak_rss[name] = max(rss, self._peak_rss.get(name, 0))

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> ProcessMonitor:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
