"""The published designs, each as training samples cut from shadow streams and a loss. None reads
the simulator's score (Samples.judge): the labels are the shadow node's events and the two commands.

  rlif        RLIF (Luo et al. 2024, "RLIF: Interactive Imitation Learning as Reinforcement
              Learning"): an intervention is the negative reward. Every sample (state, applied
              command) is labelled by whether a divergence event was open; the net's output r is the
              negative logit of an event, r = -logit P(event | state, command) (BCE).
  pvp         PVP (Peng et al. 2023, "Learning from Active Human Involvement through Proxy Value
              Propagation"): during an intervention the human's action is worth +1 and the overridden
              agent action -1. Inside events: (state, driver) -> +1, (state, policy) -> -1; outside,
              where the policy agrees with the driver, (state, driver) -> 0 (PVP's reward-free part).
              Squared error.
  preference  Preference over segment pairs (Christiano et al. 2017; T-REX, Brown et al. 2019):
              1-s segments of two training drives, the one with fewer event steps preferred (ties
              skipped); Bradley-Terry on the sums of r (BCE).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from photon_policy.reward.features import Samples

SEGMENT_STEPS = 10
"""Samples per preference segment: 1 s at the model's 0.1 s step."""


class StepSet(Dataset):
    """Items (state, command, target) for rlif and pvp."""

    def __init__(self, samples: list[Samples], design: str) -> None:
        states, commands, targets = [], [], []
        for s in samples:
            if design == "rlif":
                states.append(s.state)
                commands.append(s.driver)
                targets.append(s.event.astype(np.float32))
            else:
                ev = s.event
                states += [s.state, s.state[ev]]
                commands += [s.driver, s.policy[ev]]
                targets += [ev.astype(np.float32), -np.ones(int(ev.sum()), np.float32)]
        self.state = torch.from_numpy(np.concatenate(states).astype(np.float32))
        self.command = torch.from_numpy(np.concatenate(commands).astype(np.float32))
        self.target = torch.from_numpy(np.concatenate(targets))

    def __len__(self) -> int:
        return len(self.target)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"state": self.state[i], "command": self.command[i], "target": self.target[i]}


def segments(n: int) -> list[slice]:
    """Consecutive SEGMENT_STEPS-sample windows of n samples."""
    return [slice(a, a + SEGMENT_STEPS) for a in range(0, n - SEGMENT_STEPS + 1, SEGMENT_STEPS)]


class PairSet(Dataset):
    """Items (state_a, command_a, state_b, command_b, target = 1 if a is preferred) for preference."""

    def __init__(self, samples: list[Samples], pairs: int, seed: int = 0) -> None:
        cut = [(s, sl) for s in samples for sl in segments(len(s))]
        if len(cut) < 2:
            raise ValueError(f"{len(cut)} segment(s) of {SEGMENT_STEPS} steps: too few for preference pairs")
        events = np.array([int(s.event[sl].sum()) for s, sl in cut])
        rng = np.random.default_rng(seed)
        a, b = rng.integers(0, len(cut), (2, pairs * 4))
        keep = events[a] != events[b]
        a, b = a[keep][:pairs], b[keep][:pairs]
        if not len(a):
            raise ValueError("no two segments differ in event steps: nothing to prefer")

        def stack(idx, field):
            return torch.from_numpy(np.stack([getattr(cut[i][0], field)[cut[i][1]] for i in idx]).astype(np.float32))

        self.state_a, self.command_a = stack(a, "state"), stack(a, "driver")
        self.state_b, self.command_b = stack(b, "state"), stack(b, "driver")
        self.target = torch.from_numpy((events[a] < events[b]).astype(np.float32))

    def __len__(self) -> int:
        return len(self.target)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"state_a": self.state_a[i], "command_a": self.command_a[i], "state_b": self.state_b[i],
                "command_b": self.command_b[i], "target": self.target[i]}


def dataset(samples: list[Samples], design: str, pairs: int, seed: int) -> Dataset:
    return PairSet(samples, pairs, seed) if design == "preference" else StepSet(samples, design)


def loss(design: str, model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
    """The design's loss on a batch, and metrics ("loss", "acc": the share labelled the right way)."""
    if design == "preference":
        margin = (model(batch["state_a"], batch["command_a"], raw=True).sum(-1)
                  - model(batch["state_b"], batch["command_b"], raw=True).sum(-1))
        value = F.binary_cross_entropy_with_logits(margin, batch["target"])
        acc = ((margin > 0).float() == batch["target"]).float().mean()
    else:
        r = model(batch["state"], batch["command"], raw=True)
        if design == "rlif":
            value = F.binary_cross_entropy_with_logits(-r, batch["target"])
            acc = ((r < 0).float() == batch["target"]).float().mean()
        else:
            value = F.mse_loss(r, batch["target"])
            acc = (torch.sign(r.round()) == torch.sign(batch["target"])).float().mean()
    return value, {"loss": value.item(), "acc": acc.item()}
