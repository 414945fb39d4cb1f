"""Behaviour cloning: the driving policy learns the teleop driver's commands from recorded bags.

    photon train policy --world-model RUN --data DIR [--data DIR2 ...] --out RUN [--scratch]
    torchrun --nproc_per_node=2 -m photon_policy.cli train policy ...            # DDP (gloo on CPU)

The policy starts from a world-model checkpoint (its encoder and dynamics; the head is new)
or, with `scratch`, the same network freshly initialised: the comparison that shows what the
world model is worth. The loop, DDP, logging and resuming are the world model's
(photon_policy.learning.loop); last.pt and best.pt (lowest validation loss) are self-describing
policy checkpoints (photon_policy.policy.checkpoint).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from photon_policy.learning import loop as training
from photon_policy.bags.episode_arrays import EpisodeArrays
from photon_policy.policy.checkpoint import CheckpointError, load_policy_checkpoint, save_policy
from photon_policy.policy.dataset import PolicySamples, split_episodes
from photon_policy.policy.model import DrivingPolicy, PolicyConfig, bc_loss
from world_model_node.checkpoint import load_checkpoint as load_world_model_checkpoint
from world_model_node.model import WorldModelConfig, count_parameters


@dataclass
class PolicyTrainConfig(training.SharedSettings):
    data_dirs: list = field(default_factory=lambda: ["data/bags"])
    """Directories of recorded bags (expert drives, DAgger rounds, ...), all used together."""
    out_dir: str = "runs/policy"
    """Where last.pt (resumable), best.pt (lowest validation loss: the file to ship), log.csv go."""
    world_model: str = ""
    """World-model checkpoint the policy starts from; it also fixes the network's shape.
    Empty: the default WorldModelConfig (only with scratch)."""
    scratch: bool = False
    """Same network, every weight freshly initialised (the world model's config only)."""
    model: dict = field(default_factory=dict)
    """PolicyConfig fields other than world_model (head_width, max_speed, ...)."""
    batch_size: int = 64
    """Samples per optimizer step, over all processes (must divide by the world size)."""
    lr: float = 1e-3
    """Peak learning rate of the head (AdamW), after warmup, then cosine decay."""
    world_model_lr_scale: float = 0.3
    """The world model's parameters learn at this fraction of lr (fine-tuning)."""
    freeze_world_model_steps: int = 0
    """The world model learns nothing for this many first steps (the new head settles first)."""
    steering_weight: float = 4.0
    """Loss weight of the normalised steering error (speed's is speed_weight)."""
    speed_weight: float = 1.0
    """Loss weight of the normalised speed error."""
    max_steps: int = 2000
    """Optimizer steps in the whole run (the schedule's length; resuming counts on from the checkpoint)."""
    val_samples: int = 512
    """Validation samples, spread evenly over the held-out episodes."""

    def __post_init__(self) -> None:
        self.data_dirs = training.dir_list(self.data_dirs)
        if not self.world_model and not self.scratch:
            raise ValueError("give a world-model checkpoint to start from (or scratch=True)")
        if not 0.0 <= self.world_model_lr_scale:
            raise ValueError(f"world_model_lr_scale={self.world_model_lr_scale} must be >= 0")

    def to_dict(self) -> dict:
        return asdict(self)

    def policy_config(self) -> PolicyConfig:
        """The network: the world model's config (from its checkpoint) and the head's fields."""
        if self.world_model:
            wm = load_world_model_checkpoint(self.world_model)["model_config_obj"]
        else:
            wm = WorldModelConfig()
        return PolicyConfig(world_model=wm.to_dict(), **self.model)


@torch.no_grad()
def validate(policy: DrivingPolicy, dataset, device: torch.device, batch_size: int,
             config: PolicyTrainConfig) -> dict[str, float]:
    """Mean loss, and mean absolute steering (rad) and speed (m/s) errors over `dataset`."""
    policy.eval()
    sums, n = {"val_loss": 0.0, "val_steering_mae": 0.0, "val_speed_mae": 0.0}, 0
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        batch = {k: v.to(device) for k, v in batch.items()}
        _, m = policy.loss(batch["frames"], batch["actions"], batch["extras"], batch["label"],
                           config.steering_weight, config.speed_weight)
        b = len(batch["label"])
        for key in sums:
            sums[key] += m[key.removeprefix("val_")] * b
        n += b
    policy.train()
    return {k: v / max(n, 1) for k, v in sums.items()}


def train(config: PolicyTrainConfig, episodes: list[EpisodeArrays] | None = None) -> Path:
    """Run (or resume) training; returns the path of the best checkpoint (last.pt without validation).

    `episodes` bypasses data_dirs (tests, in-process tools)."""
    return training.run_processes(config.device, lambda procs: _train(config, episodes, procs))


def _train(config: PolicyTrainConfig, episodes, procs: training.Processes) -> Path:
    world, device = procs.world, procs.device
    out = training.prepare(config, procs)

    pc = config.policy_config()
    wm = pc.wm
    episodes = episodes if episodes is not None else training.load_episodes(config.data_dirs)
    train_eps, val_eps = split_episodes(episodes, config.val_fraction)
    train_ds = PolicySamples(train_eps, wm.context_steps, wm.model_dt, config.skip_s)
    val_ds = training.even_subset(PolicySamples(val_eps, wm.context_steps, wm.model_dt, config.skip_s),
                                  config.val_samples) if val_eps else None
    per_rank = config.batch_size // world
    if len(train_ds) < config.batch_size:
        raise ValueError(f"{len(train_ds)} training samples, fewer than one batch of {config.batch_size}")

    if config.scratch:
        policy = DrivingPolicy(pc)
    else:
        policy = DrivingPolicy.from_world_model(config.world_model, **config.model)
    policy.to(device)
    opt = torch.optim.AdamW([
        {"params": policy.head_parameters()},
        {"params": policy.world_model_parameters(), "lr_scale": config.world_model_lr_scale,
         "frozen_until": config.freeze_world_model_steps}],
        lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.99))
    step, best = 0, math.inf
    last_path, best_path = out / "last.pt", out / "best.pt"
    if config.resume and last_path.exists():
        ckpt = load_policy_checkpoint(last_path, expected_config=pc, map_location=device)
        policy.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step = ckpt["step"]
        best = ckpt["extra"].get("best_val_loss", math.inf)
        if ckpt["train_config"].get("seed") != config.seed:
            raise CheckpointError(f"{last_path}: written with seed {ckpt['train_config'].get('seed')}, "
                                  f"this run has seed {config.seed}: refusing a resume that would not continue it")
    # Parts of the world model compute what the policy does not read (the dynamics' next latent
    # map): those parameters get no gradient, which DDP must be told.
    ddp = DistributedDataParallel(policy, find_unused_parameters=True) if procs.distributed else policy

    log = None
    if procs.is_main:
        log = training.RunLog(out, ["step", "epoch", "train_loss", "val_loss", "val_steering_mae",
                                    "val_speed_mae", "samples_per_s", "lr", "elapsed_s"], fresh=step == 0)
        start = "scratch" if config.scratch else f"world model {config.world_model}"
        print(f"policy ({start}): {count_parameters(policy)} parameters, {len(train_ds)} train samples from "
              f"{len(train_eps)} episodes, {len(val_ds) if val_ds else 0} val samples from {len(val_eps)}, "
              f"{world} process(es) on {device}, step {step}/{config.max_steps}", flush=True)
    t_start = time.perf_counter()

    def forward(batch: dict) -> tuple[torch.Tensor, dict]:
        return bc_loss(ddp(batch["frames"], batch["actions"], batch["extras"]), batch["label"],
                       policy.output_scale, config.steering_weight, config.speed_weight)

    def on_interval(at: training.Interval) -> None:
        nonlocal best
        row = {"train_loss": at.train_loss, "samples_per_s": at.samples_per_s, "lr": at.lr}
        if val_ds is not None:
            row |= validate(policy, val_ds, device, max(per_rank, 64), config)
        improved = val_ds is not None and row["val_loss"] < best
        best = min(best, row.get("val_loss", math.inf))
        kw = dict(step=at.step, epoch=at.epoch, train_config=config.to_dict(), metrics=row,
                  extra={"best_val_loss": best, "world_size": world,
                         "train_episodes": [e.name for e in train_eps],
                         "val_episodes": [e.name for e in val_eps]})
        save_policy(last_path, policy, opt, **kw)
        if improved:
            save_policy(best_path, policy, **kw)
        nan = float("nan")
        log.write(at.step, [at.step, at.epoch, f"{row['train_loss']:.6f}", f"{row.get('val_loss', nan):.6f}",
                            f"{row.get('val_steering_mae', nan):.5f}", f"{row.get('val_speed_mae', nan):.3f}",
                            f"{at.samples_per_s:.1f}", f"{at.lr:.6g}", f"{time.perf_counter() - t_start:.1f}"], row)
        at.write(f"step {at.step}: train {row['train_loss']:.5f} val {row.get('val_loss', nan):.5f}, "
                 f"MAE steering {row.get('val_steering_mae', nan):.4f} rad, speed "
                 f"{row.get('val_speed_mae', nan):.2f} m/s, {at.samples_per_s:.0f} samples/s")

    try:
        training.fit(config, policy, forward, opt, train_ds, procs, step, on_interval,
                     lambda m: {"loss": f"{m['loss']:.4f}", "steer": f"{m['steering_mae']:.3f}"})
    finally:
        if log is not None:
            log.close()
    return best_path if best_path.exists() else last_path
