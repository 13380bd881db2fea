"""Percentiles, process-tree memory and CPU, and tables printed as text and as markdown."""

from __future__ import annotations

import math
import resource
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

MIB = 1024 * 1024


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sample list."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(samples_s: list[float]) -> dict:
    """p50/p95/p99 in milliseconds, and the throughput of one sequential client (operations per busy second)."""
    ms = [s * 1000 for s in samples_s]
    return {"n": len(ms), "p50": percentile(ms, 50), "p95": percentile(ms, 95), "p99": percentile(ms, 99),
            "per_s": len(ms) / sum(samples_s)}


def self_peak_rss_mib() -> float:
    """Peak RSS of this process so far: VmHWM (ru_maxrss would include the parent's RSS inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> None:
    """Restart this process's VmHWM (Linux >= 4.0), so a part's peak RSS is its own, not the whole run's so far."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def run_in_threads(target, plans: list, name: str) -> tuple[float, float]:
    """One thread per plan, `target(index, plan)`, all started then joined; returns (this process's CPU seconds
    while they ran, its peak RSS MiB, counted from the start)."""
    reset_peak_rss()
    cpu0 = time.process_time()
    threads = [threading.Thread(target=target, args=(i, plan), name=f"{name}-{i}") for i, plan in enumerate(plans)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.process_time() - cpu0, self_peak_rss_mib()


def process_tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants; none when it is gone."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_memory(pid: int) -> dict:
    """RSS and PSS summed over a process and all its descendants (PSS does not double-count shared pages)."""
    rss = pss = 0
    alive = 0
    for proc in process_tree(pid):
        try:
            info = proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
        alive += 1
    return {"rss": rss / MIB, "pss": pss / MIB, "procs": alive}


def tree_rss_mib(pid: int) -> float:
    """Cheap RSS-only sum over a process tree, for sampling while polling."""
    total = 0
    for proc in process_tree(pid):
        try:
            total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total / MIB


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants."""
    total = 0.0
    for proc in process_tree(pid):
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


class PeakTreeRss:
    """Peak RSS of a process tree, sampled every 0.25 s in a thread (off the caller's event loop) while active."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            self.peak = max(self.peak, tree_rss_mib(self.pid))

    def __enter__(self) -> PeakTreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def fmt(value, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells) -> None:
        self.rows.append([fmt(c) for c in cells])

    def text(self) -> str:
        cells = [self.headers, *self.rows]
        widths = [max(len(str(r[i])) for r in cells) for i in range(len(self.headers))]

        def line(row):
            return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths)))

        out = [self.title, "=" * len(self.title), line(self.headers), line(["-" * w for w in widths])]
        out += [line(r) for r in self.rows]
        out += [f"  * {n}" for n in self.notes]
        return "\n".join(out)

    def markdown(self) -> str:
        out = [f"### {self.title}", "", "| " + " | ".join(self.headers) + " |",
               "|" + "|".join(["---"] + ["---:"] * (len(self.headers) - 1)) + "|"]
        out += ["| " + " | ".join(str(c) for c in r) + " |" for r in self.rows]
        if self.notes:
            out += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(out) + "\n"
