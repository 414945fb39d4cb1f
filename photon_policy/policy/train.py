"""Behaviour cloning: the driving policy learns the teleop driver's commands from recorded bags.

    photon train policy --world-model RUN --data DIR [--data DIR2 ...] --out RUN [--scratch]
    torchrun --nproc_per_node=2 -m photon_policy.cli train policy ...            # DDP (gloo on CPU)

The policy starts from a world-model checkpoint (its encoder and dynamics; the head is new)
or, with `scratch`, the same network freshly initialised: the comparison that shows what the
world model is worth. The loop, DDP, logging and resuming are the world model's
(photon_policy.learning.trainer); last.pt and best.pt (lowest validation loss) are self-describing
policy checkpoints (photon_policy.policy.checkpoint) that name the world model they started from by
its content hash (extra.world_model_sha256).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from photon_policy.bags.episode_arrays import EpisodeArrays
from photon_policy.learning import loop, trainer
from photon_policy.learning.checkpoint import content_hash
from photon_policy.policy.checkpoint import load_policy_checkpoint, save_policy
from photon_policy.policy.dataset import PolicySamples, split_episodes
from photon_policy.policy.model import DrivingPolicy, PolicyConfig, bc_loss
from world_model_node.checkpoint import load_checkpoint as load_world_model_checkpoint
from world_model_node.model import WorldModelConfig


@dataclass
class PolicyTrainConfig(loop.SharedSettings):
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
        self.data_dirs = loop.dir_list(self.data_dirs)
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
    return loop.run_processes(config.device, lambda procs: _train(config, episodes, procs))


def _train(config: PolicyTrainConfig, episodes, procs: loop.Processes) -> Path:
    loop.prepare(config, procs)
    pc = config.policy_config()
    wm = pc.wm
    episodes = episodes if episodes is not None else loop.load_episodes(config.data_dirs, config.strict_data)
    train_eps, val_eps = split_episodes(episodes, config.val_fraction)
    train_ds = PolicySamples(train_eps, wm.context_steps, wm.model_dt, config.skip_s)
    val_ds = loop.even_subset(PolicySamples(val_eps, wm.context_steps, wm.model_dt, config.skip_s),
                              config.val_samples) if val_eps else None
    provenance = {}
    if config.scratch:
        policy = DrivingPolicy(pc)
    else:
        start = load_world_model_checkpoint(config.world_model)
        policy = DrivingPolicy(pc)
        policy.world_model.load_state_dict(start["model"])
        provenance["world_model_sha256"] = content_hash(start)
    policy.to(procs.device)
    opt = torch.optim.AdamW([
        {"params": policy.head_parameters()},
        {"params": policy.world_model_parameters(), "lr_scale": config.world_model_lr_scale,
         "frozen_until": config.freeze_world_model_steps}],
        lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.99))
    val_batch = max(config.batch_size // procs.world, 64)
    return trainer.run(config, trainer.Task(
        name="policy (scratch)" if config.scratch else f"policy (from world model {config.world_model})",
        model=policy, optimizer=opt, train_set=train_ds, val_set=val_ds,
        loss=lambda m, b: bc_loss(m(b["frames"], b["actions"], b["extras"]), b["label"], policy.output_scale,
                                  config.steering_weight, config.speed_weight),
        validate=lambda: validate(policy, val_ds, procs.device, val_batch, config),
        val_columns=("val_loss", "val_steering_mae", "val_speed_mae"), metric="val_loss", higher_is_better=False,
        save=save_policy, load=lambda path: load_policy_checkpoint(path, expected_config=pc, map_location=procs.device),
        postfix=lambda m: {"loss": f"{m['loss']:.4f}", "steer": f"{m['steering_mae']:.3f}"},
        # The world model computes parts the policy never reads (the dynamics' next latent map).
        find_unused_parameters=True,
        extra={"train_episodes": [e.name for e in train_eps], "val_episodes": [e.name for e in val_eps],
               **provenance}), procs)
