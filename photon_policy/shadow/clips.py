"""Clips, ROS-free: a memory-capped ring buffer of serialized messages, and the clip writer.

The shadow node buffers every topic it records as the CDR bytes that arrived, indexed by
their header stamp (read from the bytes: photon_policy.shadow.cdr): a clip is then a copy of
bytes into a rosbag2 MCAP bag (photon_policy.bags.recorder.BagWriter), and its window is
exact in the same stamps the divergence is computed in.

ClipWriter writes bags on its own thread (zstd-compressing seconds of camera frames takes
tens of milliseconds; the comparison must not wait), then appends the event's line to
`index.jsonl` and flushes it to disk, so the index survives a crash of the node: every
line names a closed, readable bag. A bag that cannot be written (full disk, unwritable
directory) still gets its line, with the error, and is counted.
"""
from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability

from photon_policy.bags.recorder import INFINITE, BagWriteError, BagWriter

def offered_qos(reliable: bool) -> Qos:
    """The QoS a clip records for a topic, as `ros2 bag record` writes a publisher's."""
    return Qos(QosHistory.KEEP_LAST, 10, QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
               QosDurability.VOLATILE, INFINITE, INFINITE, QosLiveliness.AUTOMATIC, INFINITE, False)


INDEX = "index.jsonl"
DRIVES = "drives.jsonl"


@dataclass
class Buffered:
    stamp_ns: int
    received_ns: int
    topic: str
    data: bytes


class RingBuffer:
    """The newest messages of every topic, at most `max_bytes` of payload; oldest out first."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.items: deque[Buffered] = deque()
        self.bytes = 0
        self.evicted = 0
        self.evicted_newest_ns: int | None = None
        """Newest stamp evicted so far: a clip starting at or before it is missing messages."""

    def add(self, item: Buffered) -> None:
        self.items.append(item)
        self.bytes += len(item.data)
        while self.bytes > self.max_bytes and len(self.items) > 1:
            old = self.items.popleft()
            self.bytes -= len(old.data)
            self.evicted += 1
            self.evicted_newest_ns = max(self.evicted_newest_ns or old.stamp_ns, old.stamp_ns)

    def span_s(self) -> float:
        """Seconds of stamps the buffer holds."""
        if not self.items:
            return 0.0
        stamps = (self.items[0].stamp_ns, self.items[-1].stamp_ns)
        return (max(stamps) - min(stamps)) * 1e-9

    def window(self, start_ns: int, end_ns: int) -> tuple[list[Buffered], bool]:
        """Messages stamped in [start_ns, end_ns] in arrival order, and whether some of the
        window was already evicted (the clip is truncated)."""
        return ([m for m in self.items if start_ns <= m.stamp_ns <= end_ns],
                self.evicted_newest_ns is not None and self.evicted_newest_ns >= start_ns)


@dataclass
class ClipJob:
    """One event's clip: its messages, the bag to write, and its index line (completed on write)."""
    path: Path
    messages: list[Buffered]
    topics: dict[str, str]
    """topic -> message type of every topic a clip should hold."""
    line: dict[str, Any] = field(default_factory=dict)
    qos: dict[str, bool] = field(default_factory=dict)
    """topic -> reliable (False: best effort), recorded as the offered QoS."""


class ClipWriter:
    """Writes ClipJobs on a background thread; counts what it wrote and what failed."""

    def __init__(self, out_dir: Path, log: Callable[[str], None] = print) -> None:
        self.out_dir = Path(out_dir)
        self.log = log
        self.counts: Counter[str] = Counter()
        self.bytes = 0
        self.last_error = ""
        self._jobs: queue.Queue[ClipJob | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="clip-writer", daemon=True)
        self._thread.start()

    def submit(self, job: ClipJob) -> None:
        self.counts["queued"] += 1
        self._jobs.put(job)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def pending(self) -> int:
        return self._jobs.qsize()

    def close(self, timeout_s: float = 30.0) -> None:
        """Write what is queued, then stop the thread."""
        self._jobs.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            self.write(job)

    def write(self, job: ClipJob) -> None:
        line = dict(job.line)
        try:
            written = self._write_bag(job)
            self.counts["clips"] += 1
            self.bytes += written
            line.update(clip=os.path.relpath(job.path, self.out_dir), bytes=written, error="")
        except (BagWriteError, OSError) as exc:
            self.counts["clip_errors"] += 1
            self.last_error = f"clip {job.path.name}: {exc}"
            self.log(self.last_error)
            line.update(clip="", bytes=0, error=str(exc))
        self.append(INDEX, line)

    def _write_bag(self, job: ClipJob) -> int:
        counts = Counter(m.topic for m in job.messages)
        with BagWriter(job.path, custom_data={"photon_shadow_event": str(job.line.get("id", ""))}) as bag:
            for topic, msgtype in job.topics.items():
                if counts[topic]:
                    bag.add_topic(topic, msgtype, [offered_qos(job.qos.get(topic, True))])
            for m in sorted(job.messages, key=lambda m: m.received_ns):
                bag.write(m.topic, m.received_ns, m.data)
            return bag.bytes_written

    def append(self, name: str, line: dict[str, Any]) -> bool:
        """Append one JSON line to `name` in the output directory and put it on disk now."""
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with open(self.out_dir / name, "a") as f:
                f.write(json.dumps(line, sort_keys=True) + "\n")
                f.flush()
                os.fsync(f.fileno())
            return True
        except OSError as exc:
            self.counts["index_errors"] += 1
            self.last_error = f"{self.out_dir / name}: {exc}"
            self.log(self.last_error)
            return False


def unique_path(directory: Path, name: str) -> Path:
    """directory/name, or name_2, name_3, ... if that exists (several runs share a clip directory)."""
    path, k = Path(directory) / name, 1
    while path.exists():
        k += 1
        path = Path(directory) / f"{name}_{k}"
    return path


def run_name() -> str:
    return time.strftime("%Y%m%d-%H%M%S")
