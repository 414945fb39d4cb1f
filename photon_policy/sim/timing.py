"""How timely the driver's commands were, per episode, ROS-free: what `photon eval --realtime` reports.

Each step the car acts on the command in force. Its age at that step is the newest frame's stamp
minus the command's stamp (sim time): 0 when the command answers the frame the driver was last
shown (always so in lockstep), one frame period (20 ms) when the answer to the newest frame had
not arrived by the tick, and so on.
  late steps       steps taken on a command older than the newest frame (age > 0)
  stale steps      steps taken with no command in force, or one older than command_timeout: braking
  dropped frames   frames whose answer never drove the car (never came, or came after a newer one)
  response time    wall time from publishing a frame to its answer's arrival (answers that came)
"""
from __future__ import annotations

import numpy as np


class EpisodeTiming:
    def __init__(self) -> None:
        self.ages_ms: list[float] = []
        self.stale_steps = 0
        self.steps = 0
        self._frames: dict[float, float] = {}   # stamp -> wall time first published
        self._used: set[float] = set()
        self._response_s: list[float] = []

    def frame(self, stamp: float, now: float) -> None:
        """A new frame was published (a resend of the same stamp keeps the first time)."""
        self._frames.setdefault(stamp, now)

    def answer(self, stamp: float, now: float) -> None:
        """A command stamped with a frame's stamp arrived."""
        shown = self._frames.get(stamp)
        if shown is not None:
            self._response_s.append(now - shown)

    def step(self, frame_stamp: float, command_stamp: float | None, stale: bool) -> None:
        """A step under the command stamped `command_stamp` (None: it carried no stamp, so it has no
        age), or braking for want of a fresh command (`stale`)."""
        self.steps += 1
        if stale:
            self.stale_steps += 1
            return
        if command_stamp is None:
            return
        self.ages_ms.append(round((frame_stamp - command_stamp) * 1e3, 3))
        self._used.add(command_stamp)

    def summary(self) -> dict:
        """Figures of the episode so far; frames the car could act on are those before its last step."""
        ages = np.asarray(self.ages_ms)
        frames = sorted(self._frames)[:self.steps]
        response = np.asarray(self._response_s) * 1e3

        def pct(a: np.ndarray, q: float) -> float:
            return round(float(np.percentile(a, q)), 2) if a.size else float("nan")

        return {"steps": self.steps, "late_steps": int(np.count_nonzero(ages > 0.0)), "stale_steps": self.stale_steps,
                "dropped_frames": sum(stamp not in self._used for stamp in frames),
                "command_age_ms_p50": pct(ages, 50), "command_age_ms_p99": pct(ages, 99),
                "command_age_ms_max": round(float(ages.max()), 2) if ages.size else float("nan"),
                "response_ms_p50": pct(response, 50), "response_ms_p99": pct(response, 99)}
