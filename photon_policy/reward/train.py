"""`photon train reward`: a reward model from the shadow fleet's clips (and drives), on the frozen
world model's features, by one of the designs in designs.py, through the shared training loop.

Training streams: the full drives when --drives is given (every frame, events from the shadow node's
/shadow/divergence in them), else the clip bags; the clip index is checked either way. Streams whose
seed is in `holdout_seeds` are never read for training (they are `photon eval reward`'s).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from photon_policy.learning import loop, trainer
from photon_policy.learning.checkpoint import content_hash
from photon_policy.reward import designs
from photon_policy.reward.data import drive_bags, drive_contexts, read_clip_dir
from photon_policy.reward.features import Samples, load_samples
from photon_policy.reward.model import RewardConfig, RewardNet, load_reward_checkpoint, save_reward
from photon_policy.seeds import parse_seeds
from world_model_node.checkpoint import load_model as load_world_model
from world_model_node.dataset import split_episodes


@dataclass
class RewardTrainConfig(loop.SharedSettings):
    clips: str = ""
    """A shadow node's output_dir: index.jsonl and the clip bags."""
    drives: str = ""
    """Full drives of the same fleet (optional): trained on instead of the clips when given."""
    out_dir: str = "runs/reward"
    world_model: str = ""
    """World-model checkpoint whose features the reward reads (frozen)."""
    design: str = "rlif"
    """rlif, pvp or preference (designs.py)."""
    speed_gate: bool = False
    """rlif only: reward = forward speed x P(no intervention) (model.py)."""
    holdout_seeds: str = ""
    """Seeds never trained on (e.g. 2080-2099): the evaluation's."""
    width: int = 256
    layers: int = 2
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    max_steps: int = 1500
    pairs: int = 20000
    """Preference pairs drawn (design preference)."""
    val_interval: int = 250
    threads: int = 1
    """One thread: the network is small, and more threads only spin on a loaded machine (50 vs 1.4 steps/s)."""
    feature_cache: str = ""
    """Where the world model's features of each bag are cached (default: out_dir/features)."""

    def __post_init__(self) -> None:
        if not self.clips:
            raise ValueError("give the shadow clips directory (--clips)")
        if not self.world_model:
            raise ValueError("give a world-model checkpoint")
        RewardConfig(design=self.design, speed_gate=self.speed_gate)  # validates both

    def to_dict(self) -> dict:
        return asdict(self)


def training_bags(config: RewardTrainConfig) -> tuple[list[Path], dict[str, str]]:
    """(bags to train on, bag name -> driver variant), held-out seeds left out."""
    lines, clip_bags = read_clip_dir(Path(config.clips))
    held = set(parse_seeds(config.holdout_seeds)) if config.holdout_seeds else set()
    if config.drives:
        contexts = drive_contexts(Path(config.drives))
        bags = [b for b in drive_bags(Path(config.drives)) if _seed_of(b.name) not in held]
    else:
        contexts = {line["clip"]: line.get("context", "") for line in lines}
        bags = [clip_bags[line["clip"]] for line in lines if line.get("seed") not in held]
    return bags, contexts


def _seed_of(bag_name: str) -> int | None:
    """The seed in a fleet drive's name (shadow_<driver>_s<seed>_n<noise>), or None."""
    for part in bag_name.split("_"):
        if part[:1] == "s" and part[1:].isdigit():
            return int(part[1:])
    return None


def train(config: RewardTrainConfig, samples: list[Samples] | None = None) -> Path:
    return loop.run_processes(config.device, lambda procs: _train(config, samples, procs))


def _train(config: RewardTrainConfig, samples, procs: loop.Processes) -> Path:
    out = loop.prepare(config, procs)
    wm, wm_ckpt = load_world_model(config.world_model)
    wm_hash = content_hash(wm_ckpt)
    if samples is None:
        bags, contexts = training_bags(config)
        samples = load_samples(bags, wm, wm_hash, Path(config.feature_cache or out / "features"), contexts,
                               config.progress)
    # Split by stream name (CRC32), as the other trainers split episodes.
    train_s, val_s = split_episodes([s for s in samples if len(s)], config.val_fraction)
    train_ds = designs.dataset(train_s, config.design, config.pairs, config.seed)
    try:
        val_ds = designs.dataset(val_s, config.design, max(config.pairs // 10, 1), config.seed + 1) if val_s else None
    except ValueError as exc:  # too few held-out segments to pair: train without validation, and say so
        print(f"[photon] no validation: {exc}", flush=True)
        val_ds = None
    rc = RewardConfig(state_dim=samples[0].state.shape[1], design=config.design, width=config.width,
                      layers=config.layers, speed_gate=config.speed_gate)
    model = RewardNet(rc).to(procs.device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    def loss(m, batch):
        return designs.loss(config.design, m, batch)

    @torch.no_grad()
    def validate() -> dict[str, float]:
        model.eval()
        _, m = loss(model, {k: v.to(procs.device) for k, v in val_ds[:].items()})  # the whole set: one batch
        model.train()
        return {"val_loss": m["loss"], "val_acc": m["acc"]}

    return trainer.run(config, trainer.Task(
        name=f"reward model ({config.design}, world model {wm_hash[:12]})", model=model, optimizer=opt,
        train_set=train_ds, val_set=val_ds, loss=loss, validate=validate, val_columns=("val_loss", "val_acc"),
        metric="val_loss", higher_is_better=False, save=save_reward,
        load=lambda path: load_reward_checkpoint(path, wm_hash, procs.device),
        postfix=lambda m: {"loss": f"{m['loss']:.4f}", "acc": f"{m['acc']:.3f}"},
        extra={"world_model_sha256": wm_hash, "world_model": str(config.world_model),
               "train_streams": [s.name for s in train_s], "val_streams": [s.name for s in val_s]}), procs)

