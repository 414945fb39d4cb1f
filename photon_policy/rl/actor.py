"""The policy acting on a batch of envs through the policy node's own PolicyRuntime (one per env):
the same context, extras and fallbacks as on the car. For PPO it also keeps what the head read
(a forward pre-hook on policy.head), so the update recomputes the head from those inputs: the world
model is frozen during RL, only the head (and the action noise) learn.
"""
from __future__ import annotations

import numpy as np
import torch

from photon_policy.policy.model import DrivingPolicy
from photon_policy.policy.runtime import PolicyRuntime
from photon_policy.sim.carracing import DT


class BatchActor:
    def __init__(self, policy: DrivingPolicy, n: int) -> None:
        self.policy = policy
        wm = policy.world_model.config
        self._head_input: torch.Tensor | None = None
        self._hook = policy.head.register_forward_pre_hook(self._keep_head_input)
        self.runtimes = [PolicyRuntime(self._compute, wm.context_steps, wm.model_dt, policy.latent_shape)
                         for _ in range(n)]
        self.head_dim = policy.head[0].in_features

    def _keep_head_input(self, module, args) -> None:
        self._head_input = args[0].detach()

    @torch.no_grad()
    def _compute(self, frame, past, actions, extras):
        return self.policy.frame_step(frame, past, actions, extras)

    def close(self) -> None:
        self._hook.remove()

    def reset(self, i: int) -> None:
        self.runtimes[i].reset()

    def act(self, frames: np.ndarray, stamps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One frame per env -> (commands (N, 2) raw, ready (N,) bool: a whole context, head inputs
        (N, D)). An env without context yet gets a stop (0, 0) and ready False."""
        n = len(frames)
        commands, ready, inputs = np.zeros((n, 2), np.float32), np.zeros(n, bool), np.zeros((n, self.head_dim), np.float32)
        for i in range(n):
            result = self.runtimes[i].push(frames[i], float(stamps[i]))
            if result.command is not None:
                commands[i], ready[i], inputs[i] = result.command, True, self._head_input[0].numpy()
        return commands, ready, inputs

    def applied(self, stamps: np.ndarray, commands: np.ndarray, imu: np.ndarray, speed: np.ndarray) -> None:
        """What each env's car got for its frame, and the IMU and speed after it (stamped with the frame:
        the next frame reads them as the newest before it, as the node does)."""
        for i, rt in enumerate(self.runtimes):
            rt.add_applied(float(stamps[i]), float(commands[i, 0]), float(commands[i, 1]))
            rt.add_imu(float(stamps[i]), *map(float, imu[i]))
            rt.add_odom(float(stamps[i]), float(speed[i, 0]))


def head_command(policy: DrivingPolicy, head_input: torch.Tensor) -> torch.Tensor:
    """The policy's command from its head's input, with gradients (DrivingPolicy.act's last step)."""
    out = policy.head(head_input)
    return torch.stack([torch.tanh(out[:, 0]), torch.sigmoid(out[:, 1])], -1) * policy.output_scale


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
