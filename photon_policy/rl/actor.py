"""The policy acting on a batch of envs through the policy node's own PolicyRuntime (one per env):
the same context, extras and fallbacks as on the car. Only the head learns in RL, so the frozen part
of the per-frame compute (encoder, world-model features: DrivingPolicy.frame_trunk) runs as
TorchScript, once per frame for all envs together, and the head eagerly on its output. The head's
input is kept per env, so the PPO update recomputes only the head.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from photon_policy.policy.export import trace
from photon_policy.policy.model import DrivingPolicy, FrameTrunk
from photon_policy.policy.runtime import FrameResult, PolicyRuntime
from photon_policy.sim.carracing import DT


class FrozenTrunk:
    """DrivingPolicy.frame_trunk traced with TorchScript, once per batch size (a trace fixes its
    shapes); the head is not in it, so it stays valid while the head learns. TorchScript rather
    than ONNX Runtime: tracing takes about a second where exporting to ONNX takes tens of seconds
    at every run's start, and batched over the envs the traced trunk costs ~0.8 ms a frame per env
    (eager: ~4.4 ms), well below the environment's own ~10 ms."""

    def __init__(self, policy: DrivingPolicy) -> None:
        self.policy = policy
        self._traced: dict[int, torch.jit.ScriptModule] = {}

    def __call__(self, frame, past_latents, actions, extras) -> tuple[torch.Tensor, torch.Tensor]:
        """DrivingPolicy.frame_trunk's inputs and outputs, for any batch."""
        n = len(frame)
        if n not in self._traced:
            self._traced[n] = trace(self.policy, FrameTrunk, n)
        with torch.no_grad():
            return self._traced[n](frame, past_latents, actions, extras)


class BatchActor:
    def __init__(self, trunk: FrozenTrunk, n: int) -> None:
        self.trunk, self.policy = trunk, trunk.policy
        wm = self.policy.world_model.config
        self.runtimes = [PolicyRuntime(self._compute, wm.context_steps, wm.model_dt, self.policy.latent_shape)
                         for _ in range(n)]
        self.head_dim = self.policy.head[0].in_features

    @torch.no_grad()
    def _compute(self, frame, past, actions, extras) -> tuple[torch.Tensor, torch.Tensor]:
        """DrivingPolicy.frame_step, the trunk traced: what a runtime's own push() runs."""
        head_input, latent = self.trunk(frame, past, actions, extras)
        return self.policy.command(head_input), latent

    def reset(self, i: int) -> None:
        self.runtimes[i].reset()

    def act(self, frames: np.ndarray, stamps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One frame per env -> (commands (N, 2) raw, ready (N,) bool: a whole context, head inputs
        (N, D)). An env without context yet gets a stop (0, 0) and ready False. Each runtime prepares
        its frame's inputs and takes back its outputs; the trunk runs once over all of them."""
        return self._act(range(len(frames)), frames, stamps)

    def warm_up(self, i: int, warmup: dict[str, np.ndarray]) -> None:
        """Env i's runtime (just reset) fed the frames before an episode's hand-over (DriveByWireCarRacing
        with start points: info["warmup"]), stamped from 0, with the commands the car got for them, as
        if it had driven them: its context is whole at the hand-over."""
        for j, (frame, command) in enumerate(zip(warmup["frames"], warmup["commands"])):
            self._act([i], frame[None], np.array([j * DT]))
            self._applied(i, j * DT, command, warmup["imu"][j], warmup["speed"][j])

    def _act(self, envs, frames: np.ndarray, stamps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """act() for the runtimes of `envs` (their frames and stamps in that order)."""
        runtimes = [self.runtimes[i] for i in envs]
        n = len(runtimes)
        commands, ready, inputs = np.zeros((n, 2), np.float32), np.zeros(n, bool), np.zeros((n, self.head_dim), np.float32)
        pending = [rt.prepare(frames[i], float(stamps[i])) for i, rt in enumerate(runtimes)]
        live = [i for i, p in enumerate(pending) if not isinstance(p, FrameResult)]
        if not live:
            return commands, ready, inputs
        started = time.perf_counter()
        head_input, latent = self.trunk(*(torch.cat(parts) for parts in zip(*(pending[i].inputs for i in live))))
        with torch.no_grad():
            command = self.policy.command(head_input)
        each = (time.perf_counter() - started) / len(live)
        for j, i in enumerate(live):
            result = runtimes[i].finish(pending[i], command[j:j + 1], latent[j:j + 1], each)
            if result.command is not None:
                commands[i], ready[i], inputs[i] = result.command, True, head_input[j].numpy()
        return commands, ready, inputs

    def applied(self, stamps: np.ndarray, commands: np.ndarray, imu: np.ndarray, speed: np.ndarray) -> None:
        """What each env's car got for its frame, and the IMU and speed after it (stamped with the frame:
        the next frame reads them as the newest before it, as the node does)."""
        for i in range(len(self.runtimes)):
            self._applied(i, float(stamps[i]), commands[i], imu[i], speed[i])

    def _applied(self, i: int, stamp: float, command: np.ndarray, imu: np.ndarray, speed: np.ndarray) -> None:
        rt = self.runtimes[i]
        rt.add_applied(stamp, float(command[0]), float(command[1]))
        rt.add_imu(stamp, *map(float, imu))
        rt.add_odom(stamp, float(speed[0]))


def apply(actor: BatchActor, scorers: list | None, k: np.ndarray, obs: dict, commands: np.ndarray) -> np.ndarray:
    """The commands the envs' cars get for their frames k: each env's learned reward for (frame,
    command) (zeros without scorers), then the runtimes and scorers told what was applied and what
    the IMU and speed read. Call before stepping the envs with `commands`."""
    stamps = k * DT
    rewards = np.zeros(len(k), np.float32)
    for i, s in enumerate(scorers or ()):
        rewards[i] = s.score(int(k[i]), obs["frame"][i], commands[i])
    actor.applied(stamps, commands, obs["imu"], obs["speed"])
    for i, s in enumerate(scorers or ()):
        s.observe(obs["imu"][i], float(obs["speed"][i, 0]))
    return rewards


def hand_over(actor: BatchActor, scorers: list | None, i: int, warmup: dict[str, np.ndarray]) -> int:
    """Env i's runtime and scorer (both just reset) warmed on the frames before its episode's hand-over
    (info["warmup"] of DriveByWireCarRacing's start points); returns the k its drive goes on from."""
    actor.warm_up(i, warmup)
    for j, (frame, command) in enumerate(zip(warmup["frames"], warmup["commands"]) if scorers else ()):
        scorers[i].score(j, frame, command)
        scorers[i].observe(warmup["imu"][j], float(warmup["speed"][j][0]))
    return len(warmup["frames"])
