"""The world model over a live camera stream, ROS-free: what world_model_node runs per frame.

Camera frames arrive at the camera rate (50 Hz in simulation); the model steps
every `model_dt` (0.1 s). The frame at each model-step boundary is folded into the
carried state with the mean command applied over the step before it, as
world_model_node.interface defines (the same as training). A gap in the stream (a
dropped frame or a stall) resets the context rather than predicting from a stale one;
so does a jump of the clock backwards by more than interface.RESTART_S (a bag that
loops, a clock set by NTP): a later frame is otherwise "out of order" for ever.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from world_model_node.interface import RESTART_S, AppliedCommands
from world_model_node.model import State, WorldModel


@dataclass(frozen=True)
class Candidate:
    name: str
    steering_angle: float  # rad, held over the horizon; speed is the current command's


def candidates(max_steering: float) -> tuple[Candidate, ...]:
    """The futures the node shows side by side: straight, full left, full right."""
    return (Candidate("straight", 0.0), Candidate("left", max_steering), Candidate("right", -max_steering))


class StreamingPredictor:
    def __init__(self, model: WorldModel, gap_s: float | None = None) -> None:
        self.model = model.eval()
        self.config = model.config
        self.device = next(model.parameters()).device
        self.gap_s = gap_s if gap_s is not None else 2.5 * self.config.model_dt
        self.resets = 0
        """Context resets: gaps in the stream and clock jumps."""
        self.clock_jumps = 0
        """Frames stamped more than RESTART_S before the previous one: a new stream (counted in resets too)."""
        self.out_of_order = 0
        self.reset()

    def reset(self) -> None:
        self.state: State | None = None
        self.observed = 0
        self._last_frame_stamp: float | None = None
        self._last_step_stamp: float | None = None
        self._applied = AppliedCommands(self.config.model_dt)

    @property
    def ready(self) -> bool:
        """Enough context observed to predict."""
        return self.observed >= self.config.context_steps

    def push(self, frame: np.ndarray, stamp: float, applied: np.ndarray) -> bool:
        """One camera frame (model-size uint8 RGB), its stamp (s), and the command applied
        since the previous frame. Returns True when the frame was folded into the state."""
        if self._last_frame_stamp is not None:
            dt = stamp - self._last_frame_stamp
            if -RESTART_S <= dt <= 0.0:
                self.out_of_order += 1
                return False
            if dt > self.gap_s or dt < -RESTART_S:
                self.resets += 1
                self.clock_jumps += dt < -RESTART_S
                self.reset()
        self._last_frame_stamp = stamp
        self._applied.add(stamp, applied)
        due = self._last_step_stamp is None or stamp - self._last_step_stamp >= 0.9 * self.config.model_dt
        if not due:
            return False
        # The first step of a stream starts a fresh state: its action is unused.
        first = self._last_step_stamp is None
        action = np.zeros(2, np.float32) if first else self._applied.mean_over_step(stamp)
        self._applied.forget_before(stamp - self.config.model_dt)
        self._last_step_stamp = stamp
        frames = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None, None].to(self.device)
        actions = torch.as_tensor(action, dtype=torch.float32, device=self.device)[None, None]
        with torch.inference_mode():
            self.state = self.model.observe(frames, actions, self.state)
        self.observed += 1
        return True

    def predict(self, future_actions: np.ndarray) -> np.ndarray:
        """(R, H, 2) rows of future commands -> (R, H, size, size, 3) uint8 predicted frames."""
        if not self.ready:
            raise RuntimeError(f"need {self.config.context_steps} observed steps, have {self.observed}")
        actions = torch.as_tensor(future_actions, dtype=torch.float32, device=self.device)
        rows = actions.shape[0]
        s = self.state
        batch = replace(s, feat=s.feat.expand(rows, *s.feat.shape[1:]), h=s.h.expand(rows, -1),
                        anchor=s.anchor.expand(rows, *s.anchor.shape[1:]),
                        motion=s.motion.expand(rows, -1, -1))
        with torch.inference_mode():
            frames = self.model.decode(self.model.imagine(batch, actions))
        return (frames.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2).cpu().numpy()

    def features(self) -> np.ndarray:
        """The policy's input vector from the current state (see WorldModel.policy_features)."""
        with torch.inference_mode():
            return self.model.policy_features(self.state)[0].cpu().numpy()


def strip(predictions: np.ndarray) -> np.ndarray:
    """(R, H, s, s, 3) -> one (R*s, H*s, 3) image: a row per candidate, a column per horizon step."""
    r, h, s, _, c = predictions.shape
    return predictions.transpose(0, 2, 1, 3, 4).reshape(r * s, h * s, c)
