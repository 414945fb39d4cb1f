"""The frozen world model's view of a shadow stream, one sample per model step (0.1 s).

At camera frame k the reward model reads what the policy reads (world_model_node.interface): the
world model's policy_features after observing frames k-2s, k-s, k with the applied commands, and
the extras (IMU, speed) normalised as the policy normalises them. The applied steering extra is left
out, as the policy leaves it out: with it a model can tell who drove from the previous command.
Commands are scored normalised by the policy's output range ([max steering, max speed]).

Only the frames of one phase are encoded (every s-th frame): each costs one encoder pass. The
features of a bag are cached under the run directory, keyed by the bag and the world model's hash.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from photon_policy.policy.dataset import extras_at
from photon_policy.policy.model import PolicyConfig
from photon_policy.reward.data import Stream, read_stream
from world_model_node.dataset import model_stride, window_starts
from world_model_node.interface import context_frames, step_actions
from world_model_node.model import WorldModel

_POLICY = PolicyConfig()
EXTRAS_SCALE = np.array([_POLICY.accel_scale, _POLICY.accel_scale, _POLICY.yaw_rate_scale, _POLICY.speed_scale,
                         np.inf], np.float32)
"""Divides the extras; inf zeroes the applied steering (see the module docstring)."""
SPEED_COLUMN = -2
"""state[..., SPEED_COLUMN]: the normalised forward speed (the extras come last, steering zeroed)."""
COMMAND_SCALE = np.array([_POLICY.max_steering_angle, _POLICY.max_speed], np.float32)
FIELDS = ("frame", "time", "state", "driver", "policy", "event", "judge")


@dataclass
class Samples:
    """One stream's samples, one per model step; commands normalised by COMMAND_SCALE."""
    name: str
    seed: int
    context: str
    frame: np.ndarray
    """(N,) camera frame index k."""
    time: np.ndarray
    """(N,) seconds since the stream's first frame."""
    state: np.ndarray
    """(N, D) float32: world-model features + normalised extras."""
    driver: np.ndarray
    """(N, 2) the driver's command answering frame k (applied)."""
    policy: np.ndarray
    """(N, 2) the shadow policy's command at frame k."""
    event: np.ndarray
    """(N,) bool: a divergence event open at frame k."""
    judge: np.ndarray
    """(N,) the simulator's score at frame k: evaluation only."""

    def __len__(self) -> int:
        return len(self.frame)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, seed=self.seed, context=self.context, **{f: getattr(self, f) for f in FIELDS})
        tmp.replace(path)

    @classmethod
    def load(cls, name: str, path: Path) -> "Samples":
        with np.load(path) as z:
            return cls(name, int(z["seed"]), str(z["context"]), **{f: z[f] for f in FIELDS})


def world_model_features(wm: WorldModel, z: torch.Tensor, actions: torch.Tensor) -> np.ndarray:
    """(B, D) policy_features after observing the context latents z (B, T, C, S, S) with the
    applied step actions (B, T, 2): what the policy's head reads of the world model."""
    state = wm.observe_latents(z, z.new_zeros(*z.shape[:2], 1), actions, None)
    return wm.policy_features(state).numpy()


@torch.no_grad()
def stream_samples(wm: WorldModel, stream: Stream, batch: int = 64) -> Samples:
    a = stream.arrays
    steps, stride = wm.config.context_steps, model_stride(wm.config.model_dt, a)
    ks = window_starts(a, steps, stride, skip_s=0.0) + (steps - 1) * stride
    if len(ks):
        ks = ks[(ks - ks[0]) % stride == 0]  # one phase: every context frame is a sample's own frame
    needed = np.unique(np.concatenate([context_frames(k, steps, stride) for k in ks])) if len(ks) else ks
    latents = {}
    for i in range(0, len(needed), batch):
        idx = needed[i:i + batch]
        frames = torch.from_numpy(np.ascontiguousarray(a.frames[idx].transpose(0, 3, 1, 2)))
        for j, z in zip(idx, wm.encode(frames[:, None])[:, 0]):
            latents[int(j)] = z
    states = []
    for i in range(0, len(ks), batch):
        chunk = ks[i:i + batch]
        z = torch.stack([torch.stack([latents[int(f)] for f in context_frames(k, steps, stride)]) for k in chunk])
        actions = torch.from_numpy(np.stack([step_actions(a.commands, context_frames(k, steps, stride), stride)
                                             for k in chunk]))
        states.append(world_model_features(wm, z, actions))
    extras = np.stack([extras_at(a, int(k)) for k in ks]) / EXTRAS_SCALE if len(ks) else np.zeros((0, 5))
    feats = np.concatenate(states) if states else np.zeros((0, wm.config.policy_feature_dim), np.float32)
    return Samples(stream.name, -1 if stream.seed is None else int(stream.seed), stream.context, ks,
                   a.stamps[ks] - a.stamps[0], np.concatenate([feats, extras], 1).astype(np.float32),
                   a.teleop[ks] / COMMAND_SCALE, stream.policy[ks] / COMMAND_SCALE, stream.event[ks],
                   stream.judge[ks])


def load_samples(bags: list[Path], wm: WorldModel, wm_sha256: str, cache_dir: Path | None,
                 contexts: dict[str, str] | None = None, progress: bool = True) -> list[Samples]:
    """Samples of every bag (read with data.read_stream), from the cache when it holds them."""
    out = []
    for bag in tqdm(bags, desc="world-model features", unit="bag", disable=not progress, mininterval=0.5):
        cached = cache_dir / f"{bag.name}.{wm_sha256[:16]}.npz" if cache_dir is not None else None
        if cached is not None and cached.is_file():
            out.append(Samples.load(bag.name, cached))
            continue
        samples = stream_samples(wm, read_stream(bag, (contexts or {}).get(bag.name, "")))
        if cached is not None:
            samples.save(cached)
        out.append(samples)
    return out
