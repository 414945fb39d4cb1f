"""Divergence math, ROS-free: pair the driver's and the policy's commands, score them, find events.

Pairing (`Pairer`): the policy stamps each command with the camera frame it answers; the
driver's command compared with it is the one *in force* at that stamp (the newest driver
command stamped at or before it), which is the expert's answer to the same frame in
simulation and the last joystick command on a car. A policy command waits until the
driver's stream has passed its stamp (or `pair_wait_s` of newer stamps have gone by), so
a driver command that arrives late is still the one it is compared with.

Score (`DivergenceConfig.score`): the two errors, each in units of what counts as a clear
disagreement (`steering_scale` rad, `speed_scale` m/s), combined as a Euclidean norm.

Events (`EventDetector`): open when the score stays at or above `open_threshold` for
`min_duration_s`; the event starts at the first sample above. An open event closes when the
score stays below `close_threshold` (< open: hysteresis) for `close_duration_s`, or when the
pairs stop for longer than `max_gap_s` (the stream broke); it ends at its last sample at or
above the close threshold. No event opens in the first `warmup_s` of pairs (after the start or
a gap): the policy is still filling its context and ramping up from a stop.
"""
from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field

from photon_policy.config_files import describe, require_non_negative, require_positive

STAMP_TOLERANCE_S = 1e-6
"""Durations are differences of float stamps: 10.2 - 10.1 must count as 0.1 s."""


@dataclass
class DivergenceConfig:
    steering_scale: float = describe(0.1, "rad of steering difference that scores 1")
    speed_scale: float = describe(10.0, "m/s of speed difference that scores 1")
    open_threshold: float = describe(1.0, "an event opens when the score stays >= this ...")
    min_duration_s: float = describe(0.2, "... for this long (s, camera-stamp time)")
    close_threshold: float = describe(0.7, "an open event closes when the score stays < this (hysteresis) ...")
    close_duration_s: float = describe(0.2, "... for this long (s)")
    max_gap_s: float = describe(0.5, "s without a pair: an open event closes, a candidate is dropped")
    max_driver_age_s: float = describe(0.25, "a driver command older than this at the policy's stamp is stale")
    pair_wait_s: float = describe(0.1, "s of newer stamps a policy command waits for the driver's stream")
    warmup_s: float = describe(1.0, "s after the pairs start (or resume after a gap) that open no event: "
                                    "the policy needs its context and ramps up from a stop")

    def __post_init__(self) -> None:
        require_positive(self, "steering_scale", "speed_scale", "open_threshold", "max_gap_s", "max_driver_age_s")
        require_non_negative(self, "min_duration_s", "close_duration_s", "pair_wait_s", "warmup_s")
        if not 0.0 < self.close_threshold <= self.open_threshold:
            raise ValueError(f"close_threshold={self.close_threshold} must be in (0, open_threshold="
                             f"{self.open_threshold}]")

    def score(self, steering_error: float, speed_error: float) -> float:
        return math.hypot(steering_error / self.steering_scale, speed_error / self.speed_scale)


@dataclass(frozen=True)
class Command:
    stamp: float
    steering: float
    speed: float


@dataclass(frozen=True)
class Pair:
    """A policy command and the driver's command in force at its stamp."""
    stamp: float
    policy: Command
    driver: Command
    score: float

    @property
    def steering_error(self) -> float:
        return self.policy.steering - self.driver.steering

    @property
    def speed_error(self) -> float:
        return self.policy.speed - self.driver.speed


def _finite(c: Command) -> bool:
    return math.isfinite(c.stamp) and math.isfinite(c.steering) and math.isfinite(c.speed)


class Pairer:
    """Policy commands in, pairs out; whatever cannot be paired is counted in `unpaired` (policy
    commands, by reason) or `dropped` (driver commands, by reason)."""

    def __init__(self, config: DivergenceConfig, history: int = 512) -> None:
        self.config = config
        self.driver: deque[Command] = deque(maxlen=history)  # in stamp order
        self.pending: deque[Command] = deque()              # policy commands in stamp order
        self.unpaired: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.pairs = 0
        self.policy_commands = 0
        """Policy commands taken (finite, in order, first of their stamp): the pairing rate's denominator."""
        self._last_policy: float | None = None

    def add_driver(self, c: Command) -> list[Pair]:
        if not _finite(c):
            self.dropped["driver_nan"] += 1
            return self.resolve()
        if self.driver:
            last = self.driver[-1].stamp
            if c.stamp < last:
                self.dropped["driver_out_of_order"] += 1
                return self.resolve()
            if c.stamp == last:  # a resend (or a correction): the newest one at a stamp is in force
                self.dropped["driver_duplicate"] += 1
                self.driver[-1] = c
                return self.resolve()
        self.driver.append(c)
        return self.resolve()

    def add_policy(self, c: Command) -> list[Pair]:
        if not _finite(c):
            self.unpaired["policy_nan"] += 1
            return self.resolve()
        if self._last_policy is not None and c.stamp <= self._last_policy:
            # The lockstep simulator resends a frame and the policy answers it again: compared once.
            self.unpaired["policy_duplicate" if c.stamp == self._last_policy else "policy_out_of_order"] += 1
            return self.resolve()
        self._last_policy = c.stamp
        self.policy_commands += 1
        self.pending.append(c)
        return self.resolve()

    def newest_stamp(self) -> float | None:
        stamps = [s for s in (self._last_policy, self.driver[-1].stamp if self.driver else None) if s is not None]
        return max(stamps) if stamps else None

    def resolve(self, now: float | None = None, flush: bool = False) -> list[Pair]:
        """Pairs for the pending policy commands whose driver command is settled: the driver's
        stream has reached their stamp, or `now` (default: the newest stamp seen) is pair_wait_s
        past it, or `flush` (shutdown)."""
        now = self.newest_stamp() if now is None else now
        driver_at = self.driver[-1].stamp if self.driver else -math.inf
        out = []
        while self.pending:
            c = self.pending[0]
            if not (flush or driver_at >= c.stamp or (now is not None and now - c.stamp >= self.config.pair_wait_s)):
                break
            self.pending.popleft()
            pair = self._pair(c)
            if pair is not None:
                out.append(pair)
        return out

    def _pair(self, c: Command) -> Pair | None:
        # From the newest back: the command in force is almost always the newest or close to it.
        i = len(self.driver) - 1
        while i >= 0 and self.driver[i].stamp > c.stamp:
            i -= 1
        if i < 0:
            self.unpaired["no_driver"] += 1
            return None
        d = self.driver[i]
        if c.stamp - d.stamp > self.config.max_driver_age_s:
            self.unpaired["driver_stale"] += 1
            return None
        self.pairs += 1
        return Pair(c.stamp, c, d, self.config.score(c.steering - d.steering, c.speed - d.speed))

    @property
    def rate(self) -> float:
        """Share of policy commands paired (nan before the first)."""
        return self.pairs / self.policy_commands if self.policy_commands else math.nan


@dataclass
class Event:
    id: int
    start: float
    end: float
    peak: float = 0.0
    peak_stamp: float = 0.0
    pairs: list[Pair] = field(default_factory=list)
    closed_by: str = ""
    """"" while open; then "score" (fell back), "gap" (pairs stopped) or "shutdown"."""

    def mean(self, value=lambda p: p.score) -> float:
        """Mean of `value(pair)` over the event's pairs (default: the score)."""
        return sum(map(value, self.pairs)) / len(self.pairs) if self.pairs else 0.0

    def add(self, pair: Pair) -> None:
        self.end = pair.stamp
        self.pairs.append(pair)
        if pair.score > self.peak:
            self.peak, self.peak_stamp = pair.score, pair.stamp


class EventDetector:
    """Pairs in stamp order in; `update` returns (event opened now or None, events closed now)."""

    def __init__(self, config: DivergenceConfig) -> None:
        self.config = config
        self.open: Event | None = None
        self.events = 0
        self._candidate: list[Pair] = []   # consecutive pairs >= open_threshold, not yet an event
        self._below: list[Pair] = []       # consecutive pairs < close_threshold inside an open event
        self._last: float | None = None
        self._stream_start: float | None = None  # first pair after the start or a gap

    def update(self, pair: Pair) -> tuple[Event | None, list[Event]]:
        closed: list[Event] = []
        if self._last is not None and pair.stamp - self._last > self.config.max_gap_s:
            closed += self._close("gap")
            self._candidate.clear()
            self._stream_start = None
        self._last = pair.stamp
        if self._stream_start is None:
            self._stream_start = pair.stamp
        if self.open is None and pair.stamp - self._stream_start < self.config.warmup_s - STAMP_TOLERANCE_S:
            return None, closed
        if self.open is None:
            return self._while_idle(pair), closed
        if pair.score < self.config.close_threshold:
            self._below.append(pair)
            if pair.stamp - self._below[0].stamp >= self.config.close_duration_s - STAMP_TOLERANCE_S:
                closed += self._close("score")
            return None, closed
        for held in self._below:  # it did not fall back for long enough: those samples belong to it
            self.open.add(held)
        self._below.clear()
        self.open.add(pair)
        return None, closed

    def _while_idle(self, pair: Pair) -> Event | None:
        if pair.score < self.config.open_threshold:
            self._candidate.clear()
            return None
        self._candidate.append(pair)
        if pair.stamp - self._candidate[0].stamp < self.config.min_duration_s - STAMP_TOLERANCE_S:
            return None
        self.events += 1
        event = Event(self.events, self._candidate[0].stamp, pair.stamp)
        for held in self._candidate:
            event.add(held)
        self._candidate.clear()
        self.open = event
        return event

    def _close(self, why: str) -> list[Event]:
        event, self.open = self.open, None
        self._below.clear()
        if event is None:
            return []
        event.closed_by = why
        return [event]

    def finish(self) -> list[Event]:
        """Shutdown: the open event closes where its samples end."""
        self._candidate.clear()
        return self._close("shutdown")
