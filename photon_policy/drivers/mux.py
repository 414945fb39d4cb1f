"""ackermann_mux semantics without ROS, made safe: which command reaches the motors.

Inputs (topics of AckermannDriveStamped) and locks (std_msgs/Bool) each have a priority and
a timeout, as in ackermann_mux's mux.yaml. The highest-priority input that is fresh (a message
within its timeout) and above every engaged lock is selected. A lock is engaged while its last
value is true, or when it has a timeout and no message came within it (a lock topic is a
heartbeat: a dead e-stop publisher must stop the car).

Where ackermann_mux would publish nothing, this mux commands a stop:
  - every input stale (or locked out): `stop` until an input is fresh again;
  - a message that is non-finite or outside the vehicle limits is never forwarded: it is
    counted, and it still counts as its input's latest word, so while that input is selected
    the mux commands a stop rather than falling back to a lower priority it did not ask for.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from photon_policy.drivers.vehicle import VehicleLimits


@dataclass(frozen=True)
class Source:
    name: str
    topic: str
    priority: int
    timeout: float

    def __post_init__(self) -> None:
        if not self.topic:
            raise ValueError(f"mux source '{self.name}' has no topic")
        if not (math.isfinite(self.timeout) and self.timeout >= 0.0):
            raise ValueError(f"mux source '{self.name}': timeout={self.timeout} must be >= 0 (0 = never stale)")
        if not 0 <= self.priority <= 255:
            raise ValueError(f"mux source '{self.name}': priority={self.priority} must be in 0..255")


@dataclass
class _Latest:
    stamp: float | None = None      # monotonic receive time
    command: Any = None              # the message to forward, or None when it was refused
    locked: bool = False             # locks only


@dataclass
class Selection:
    input: str | None                # the selected input, None = nothing fresh: stop
    forward: Any = None              # the message to publish, None = publish a stop


@dataclass
class MuxCore:
    inputs: list[Source]
    locks: list[Source]
    limits: VehicleLimits
    refused: Counter = field(default_factory=Counter)     # "<input>:<reason>" -> count
    switches: Counter = field(default_factory=Counter)    # "<from>-><to>" -> count
    active: str | None = None

    def __post_init__(self) -> None:
        names = [s.name for s in self.inputs + self.locks]
        if len(set(names)) != len(names):
            raise ValueError(f"mux source names must be unique: {names}")
        if not self.inputs:
            raise ValueError("the mux needs at least one input")
        self._latest = {s.name: _Latest() for s in self.inputs + self.locks}

    # --- messages in ------------------------------------------------------------------------------
    def on_command(self, name: str, msg: Any, steering: float, speed: float, now: float,
                   others: tuple[float, ...] = ()) -> str | None:
        """Record an input's message; returns the refusal reason, or None when it may be forwarded.
        `others`: the message's remaining numbers (steering rate, acceleration, jerk), forwarded
        as they came, so they must be finite too."""
        reason = self.limits.violation(steering, speed)
        if reason is None and not all(math.isfinite(x) for x in others):
            reason = "nonfinite"
        latest = self._latest[name]
        latest.stamp = now
        latest.command = None if reason else msg
        if reason:
            self.refused[f"{name}:{reason}"] += 1
        return reason

    def on_lock(self, name: str, locked: bool, now: float) -> None:
        latest = self._latest[name]
        latest.stamp, latest.locked = now, bool(locked)

    # --- selection --------------------------------------------------------------------------------
    def _fresh(self, source: Source, now: float) -> bool:
        stamp = self._latest[source.name].stamp
        return stamp is not None and (source.timeout == 0.0 or now - stamp <= source.timeout)

    def lock_priority(self, now: float) -> int:
        """Highest priority of an engaged lock, -1 when none is."""
        engaged = [lock.priority for lock in self.locks
                   if (self._latest[lock.name].locked and self._fresh(lock, now))
                   or (lock.timeout > 0.0 and not self._fresh(lock, now))]
        return max(engaged, default=-1)

    def select(self, now: float) -> Selection:
        floor = self.lock_priority(now)
        candidates = [s for s in self.inputs if s.priority > floor and self._fresh(s, now)]
        chosen = max(candidates, key=lambda s: s.priority, default=None)
        name = chosen.name if chosen else None
        if name != self.active:
            self.switches[f"{self.active or 'stop'}->{name or 'stop'}"] += 1
            self.active = name
        return Selection(name, self._latest[name].command if name else None)

    def engaged_locks(self, now: float) -> list[str]:
        return [lock.name for lock in self.locks
                if (self._latest[lock.name].locked and self._fresh(lock, now))
                or (lock.timeout > 0.0 and not self._fresh(lock, now))]


def sources_from_parameters(params: dict[str, Any], kind: str) -> list[Source]:
    """mux.yaml's `topics.<name>.{topic,timeout,priority}` (or `locks.<name>...`), flattened as
    ROS parameters are ('topics.navigation.topic': '/drive', ...), into sources."""
    groups: dict[str, dict[str, Any]] = {}
    for key, value in params.items():
        head, _, rest = key.partition(".")
        name, _, field_name = rest.partition(".")
        if head == kind and name and field_name:
            groups.setdefault(name, {})[field_name] = value
    sources = []
    for name, fields in sorted(groups.items()):
        missing = {"topic", "timeout", "priority"} - set(fields)
        if missing:
            raise ValueError(f"mux {kind}.{name} lacks {', '.join(sorted(missing))}")
        sources.append(Source(name, str(fields["topic"]), int(fields["priority"]), float(fields["timeout"])))
    return sources
