"""The ROS-free core of `photon play`: which messages a bag plays, and when.

A bag's messages are played at their recorded receive times (rosbag2's index, as `ros2 bag
play` does), scaled by `rate`. Each message's due time is computed from the monotonic clock at
which playback started, never by sleeping the gap since the previous message, so small delays
do not add up: a message published late does not make the next one late. A pause shifts the
origin by its length. Lateness (publish time - due time) is measured per message and reported.

`load_bag` reads a bag (MCAP or sqlite3, through the bag reader, which also reads a truncated
bag up to the damage) with each topic's type and recorded QoS; `play` schedules it into a
`Sink` (the ROS node, or a test's list). The clock and the wait are injected, so unit tests run
on a virtual clock.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from photon_policy.bags.reader import READ_ERRORS, BagError, SkippedTopic, read_raw

NS = 1_000_000_000
CLOCK_TOPIC = "/clock"
MAX_WAIT_S = 0.1
"""Longest single wait: pause, resume and stop requests are seen within this."""


@dataclass(frozen=True)
class PlayOptions:
    rate: float = 1.0
    loop: bool = False
    start_offset: float = 0.0
    """Seconds into the bag (from its first message) where playback starts."""
    topics: tuple[str, ...] = ()
    """Only these bag topics (empty: all)."""
    remap: tuple[tuple[str, str], ...] = ()
    """(bag topic, published topic) pairs."""
    clock_hz: float = 0.0
    """Publish the bag's time on /clock at this rate (0: not at all)."""
    start_paused: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"rate {self.rate}: must be a finite number > 0")
        if not (math.isfinite(self.start_offset) and self.start_offset >= 0):
            raise ValueError(f"start offset {self.start_offset}: must be a finite number of seconds >= 0")
        if not (math.isfinite(self.clock_hz) and self.clock_hz >= 0):
            raise ValueError(f"clock rate {self.clock_hz} Hz: must be a finite number >= 0")

    def published_name(self, topic: str) -> str:
        return dict(self.remap).get(topic, topic)


def parse_remap(rules: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """['/a:=/b', ...] -> (('/a', '/b'), ...); ValueError naming a malformed rule."""
    pairs = []
    for rule in rules:
        old, sep, new = rule.partition(":=")
        if not sep or not old or not new:
            raise ValueError(f"remap '{rule}': expected OLD:=NEW, e.g. /cam/image:=/camera/image_raw")
        pairs.append((old, new))
    return tuple(pairs)


@dataclass(frozen=True)
class QosRecord:
    """A topic's QoS as the bag recorded it (rosbags' Qos fields, without the ROS enums)."""
    reliable: bool = True
    transient_local: bool = False
    depth: int = 10


@dataclass
class BagTopic:
    name: str
    msgtype: str
    qos: QosRecord
    qos_recorded: bool
    """False: the bag holds no QoS for the topic (the default was used)."""
    messages: int = 0


@dataclass
class PlayableBag:
    path: Path
    topics: dict[str, BagTopic]
    messages: list[tuple[int, str, bytes]]
    """(receive time ns, topic, CDR bytes), in time order (ties keep the bag's order)."""
    skipped: list[SkippedTopic] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """What the reader could not read (a truncated file, lost messages)."""

    def skip(self, topic: str, reason: str) -> None:
        """Leave `topic` out of playback, listed with `reason`."""
        info = self.topics.pop(topic)
        self.skipped.append(SkippedTopic(topic, info.msgtype, info.messages, reason))
        self.messages = [m for m in self.messages if m[1] != topic]


def recorded_qos(bag: Path) -> dict[str, QosRecord]:
    """topic -> the QoS its publishers offered, as rosbag2 metadata lists it; {} if unreadable.
    Several publishers with different QoS: the most permissive (best effort, volatile), as
    `ros2 bag play` chooses, so every subscriber that matched one of them matches the player."""
    from rosbags.interfaces import QosDurability, QosHistory, QosReliability
    from rosbags.rosbag2 import Reader

    out: dict[str, QosRecord] = {}
    try:
        with Reader(bag) as reader:
            for connection in reader.connections:
                profiles = getattr(connection.ext, "offered_qos_profiles", None) or []
                if not profiles:
                    continue
                depths = [p.depth for p in profiles if p.history == QosHistory.KEEP_LAST and p.depth > 0]
                out[connection.topic] = QosRecord(
                    reliable=all(p.reliability == QosReliability.RELIABLE for p in profiles),
                    transient_local=all(p.durability == QosDurability.TRANSIENT_LOCAL for p in profiles),
                    depth=max(depths, default=QosRecord.depth))
    except READ_ERRORS:
        return {}
    return out


def load_bag(path: Path | str, options: PlayOptions = PlayOptions()) -> PlayableBag:
    """Read the bag's messages for playback; BagError if nothing can be read."""
    path = Path(path)
    raw, types, problems = read_raw(path, None)
    qos = recorded_qos(path)
    topics = {t: BagTopic(t, types[t], qos.get(t, QosRecord()), t in qos, len(msgs)) for t, msgs in raw.items()}
    messages = sorted(((stamp, topic, data) for topic, msgs in raw.items() for stamp, data in msgs),
                      key=lambda m: m[0])
    bag = PlayableBag(path, topics, messages, problems=problems)
    if options.topics:
        for topic in sorted(set(topics) - set(options.topics)):
            bag.skip(topic, "not in --topics")
        for topic in options.topics:
            if topic not in raw:
                bag.skipped.append(SkippedTopic(topic, "", 0, "asked for with --topics, not in the bag"))
    if options.clock_hz > 0 and CLOCK_TOPIC in bag.topics and options.published_name(CLOCK_TOPIC) == CLOCK_TOPIC:
        # Two clocks on one topic would make sim-time nodes jump between them.
        bag.skip(CLOCK_TOPIC, "replaced by --clock (the bag's receive times); without --clock it is played")
    for old, _ in options.remap:
        if old not in raw:
            bag.problems.append(f"remap {old}: no such topic in the bag")
    if not bag.messages:
        raise BagError(f"{path}: no message to play" + (f" (skipped: {'; '.join(map(str, bag.skipped))})"
                                                         if bag.skipped else ""))
    return bag


class Sink(Protocol):
    def publish(self, topic: str, data: bytes) -> None: ...
    def clock(self, bag_ns: int) -> None: ...


class PlayControl:
    """Pause, resume and stop, from any thread (the terminal key, a service, a signal)."""

    def __init__(self, paused: bool = False) -> None:
        self.paused = paused
        self.stopped = False
        self._wake = threading.Event()

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self._wake.set()

    def toggle(self) -> None:
        self.set_paused(not self.paused)

    def stop(self) -> None:
        self.stopped = True
        self._wake.set()

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, waking early on pause/resume/stop."""
        if self._wake.wait(max(seconds, 0.0)):
            self._wake.clear()


class PlaybackClock:
    """Bag time <-> monotonic time, at a rate, stopped while paused."""

    def __init__(self, bag_origin_ns: int, rate: float, now: float) -> None:
        self.bag_origin = bag_origin_ns
        self.wall_origin = now
        self.rate = rate
        self.paused_at: float | None = None
        self.paused_s = 0.0

    def due(self, bag_ns: int) -> float:
        """The monotonic time at which a message stamped `bag_ns` is due (inf while paused)."""
        if self.paused_at is not None:
            return math.inf
        return self.wall_origin + (bag_ns - self.bag_origin) / NS / self.rate

    def bag_now(self, now: float) -> int:
        at = self.paused_at if self.paused_at is not None else now
        return self.bag_origin + round((at - self.wall_origin) * self.rate * NS)

    def pause(self, now: float) -> None:
        if self.paused_at is None:
            self.paused_at = now

    def resume(self, now: float) -> None:
        if self.paused_at is not None:
            self.wall_origin += now - self.paused_at
            self.paused_s += now - self.paused_at
            self.paused_at = None

    def restart(self, bag_origin_ns: int, now: float) -> None:
        """Start a new loop: `bag_origin_ns` is due now."""
        self.bag_origin, self.wall_origin = bag_origin_ns, now


@dataclass
class PlayReport:
    published: dict[str, int] = field(default_factory=dict)
    loops: int = 0
    bag_s: float = 0.0
    """Bag time played (first to last message published, summed over loops)."""
    wall_s: float = 0.0
    """Monotonic time it took, pauses excluded."""
    paused_s: float = 0.0
    lateness_ms: list[float] = field(default_factory=list)
    stopped: bool = False
    """Ended by a stop request (Ctrl-C, SIGTERM) before the end of the bag."""

    @property
    def achieved_rate(self) -> float:
        """Bag seconds per wall second: the requested rate when playback kept up."""
        return self.bag_s / self.wall_s if self.wall_s > 0 else float("nan")

    def lateness(self) -> dict[str, float]:
        """Max, p50, p99 lateness in ms (how far behind its due time a message went out)."""
        if not self.lateness_ms:
            return {"max_ms": 0.0, "p50_ms": 0.0, "p99_ms": 0.0}
        a = np.asarray(self.lateness_ms)
        return {"max_ms": float(a.max()), "p50_ms": float(np.percentile(a, 50)),
                "p99_ms": float(np.percentile(a, 99))}

    def as_dict(self, rate: float) -> dict:
        """JSON-ready; the rate is null when fewer than two messages went out (nothing to measure)."""
        achieved = self.achieved_rate if math.isfinite(self.achieved_rate) else None
        return {"messages": sum(self.published.values()), "published": dict(self.published), "loops": self.loops,
                "bag_s": round(self.bag_s, 6), "wall_s": round(self.wall_s, 6), "paused_s": round(self.paused_s, 3),
                "rate_asked": rate, "rate_achieved": achieved and round(achieved, 6),
                "rate_error_pct": achieved and round(100 * (achieved / rate - 1), 4),
                "lateness": {k: round(v, 3) for k, v in self.lateness().items()}, "stopped": self.stopped}

    def summary(self, rate: float) -> str:
        late = self.lateness()
        ended = "stopped" if self.stopped else "done"
        return (f"{ended}: {sum(self.published.values())} messages on {len(self.published)} topic(s), "
                f"{self.bag_s:.2f} s of bag in {self.wall_s:.2f} s (+{self.paused_s:.2f} s paused): rate "
                f"{self.achieved_rate:.4f} (asked {rate:g}); behind schedule: max {late['max_ms']:.1f} ms, "
                f"p99 {late['p99_ms']:.1f} ms, p50 {late['p50_ms']:.2f} ms")


def play(bag: PlayableBag, options: PlayOptions, sink: Sink, control: PlayControl | None = None,
         now: Callable[[], float] = time.monotonic, wait: Callable[[float], None] | None = None) -> PlayReport:
    """Publish the bag's messages into `sink` on schedule until its end (forever with `loop`) or a stop."""
    control = control or PlayControl(options.start_paused)
    wait = wait or control.wait
    first = bag.messages[0][0]
    start = first + round(options.start_offset * NS)
    messages = [m for m in bag.messages if m[0] >= start]
    if not messages:
        span = (bag.messages[-1][0] - first) / NS
        raise BagError(f"{bag.path}: --start-offset {options.start_offset:g} s is past the bag's end ({span:.3f} s)")
    tick = 1.0 / options.clock_hz if options.clock_hz > 0 else math.inf
    report = PlayReport()
    clock = PlaybackClock(messages[0][0], options.rate, now())
    next_tick = now()
    first_wall = last_wall = None
    paused_before_first = 0.0
    loop_base_ns = 0  # bag time played in the loops before this one

    def sync_pause(t: float) -> None:
        (clock.pause if control.paused else clock.resume)(t)

    while True:
        for stamp, topic, data in messages:
            while True:
                if control.stopped:
                    report.stopped = True
                    return _finish(report, clock)
                t = now()
                sync_pause(t)
                if t >= next_tick:
                    sink.clock(clock.bag_now(t))
                    next_tick = t + tick
                due = clock.due(stamp)
                if t >= due:
                    break
                wait(min(due, next_tick, t + MAX_WAIT_S) - t)
            last_wall = now()  # when it went out, before the publish call's own cost
            sink.publish(topic, data)
            if first_wall is None:
                first_wall, paused_before_first = last_wall, clock.paused_s
            report.lateness_ms.append((last_wall - due) * 1e3)
            report.published[topic] = report.published.get(topic, 0) + 1
            report.bag_s = (loop_base_ns + stamp - messages[0][0]) / NS
            report.wall_s = last_wall - first_wall - (clock.paused_s - paused_before_first)
        report.loops += 1
        if not options.loop:
            sink.clock(messages[-1][0])  # a node on sim time ends at the bag's last instant, not a tick before
            return _finish(report, clock)
        # The next loop's first message is due one median message gap after the last one.
        gap = int(np.median(np.diff([m[0] for m in messages]))) if len(messages) > 1 else 0
        loop_base_ns += messages[-1][0] - messages[0][0] + gap
        clock.restart(messages[0][0] - gap, clock.due(messages[-1][0]))


def _finish(report: PlayReport, clock: PlaybackClock) -> PlayReport:
    report.paused_s = clock.paused_s
    return report
