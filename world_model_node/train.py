"""Train the world model on recorded episodes: the model, its windows, its loss and its validation;
the run itself (resume, DDP under torchrun, log.csv, best/last checkpoints) is
photon_policy.learning.trainer's, shared with every other trainer.

    photon train world-model --data DIR --out RUN
    torchrun --nproc_per_node=2 -m photon_policy.cli train world-model --data DIR --out RUN
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from photon_policy.bags.episode_arrays import EpisodeArrays
from photon_policy.learning import loop, trainer
from photon_policy.learning.checkpoint import content_hash
from world_model_node.checkpoint import load_checkpoint, save_checkpoint
from world_model_node.dataset import WindowDataset, split_episodes
from world_model_node.model import WorldModel, WorldModelConfig


@dataclass
class TrainConfig(loop.SharedSettings):
    data_dirs: list = field(default_factory=lambda: ["data/bags"])
    """Directories of recorded bags, read with photon_policy.bags.reader (list_bags, read_episode)."""
    out_dir: str = "runs/world_model"
    """Where last.pt (resumable, with optimizer state), best.pt (highest validation PSNR at the
    last horizon; weights only, the file to ship), log.csv and TensorBoard events (if installed) go."""
    model: WorldModelConfig = field(default_factory=WorldModelConfig)
    """The network; stored in every checkpoint."""
    batch_size: int = 16
    """Windows per optimizer step, over all processes (must divide by the world size)."""
    lr: float = 2e-3
    """Peak learning rate (AdamW), reached after warmup, then cosine decay."""
    max_steps: int = 1500
    """Optimizer steps in the whole run (the schedule's length; resuming counts on from the checkpoint)."""
    val_samples: int = 256
    """Validation windows, spread evenly over the held-out episodes."""
    loss_weights: dict = field(default_factory=dict)
    """Overrides for WorldModel.compute_loss weights: gen, rec, warp, lat, motion."""
    init_from: str = ""
    """Fine-tune: start from this checkpoint's weights (same model config) with a fresh optimizer
    and schedule; "" = random initialisation. Ignored when resuming (last.pt has the weights)."""

    def __post_init__(self) -> None:
        self.data_dirs = loop.dir_list(self.data_dirs)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d


@torch.no_grad()
def validate(model: WorldModel, dataset: WindowDataset, device: torch.device, batch_size: int,
             weights: dict | None = None) -> dict[str, float]:
    """Mean loss and mean per-window PSNR at the last horizon step over `dataset`."""
    model.eval()
    loss_sum, psnr_sum, n = 0.0, 0.0, 0
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        frames, actions = batch["frames"].to(device), batch["actions"].to(device)
        loss, metrics = model.compute_loss(frames, actions, weights, batch["motion"].to(device))
        psnr_sum += metrics["psnr_last"] * len(frames)
        loss_sum += loss.item() * len(frames)
        n += len(frames)
    model.train()
    return {"val_loss": loss_sum / max(n, 1), "val_psnr_last": psnr_sum / max(n, 1)}


def train(config: TrainConfig, episodes: list[EpisodeArrays] | None = None) -> Path:
    """Run (or resume) training; returns the path of the best checkpoint (last.pt without validation).

    `episodes` bypasses data_dirs (tests, in-process tools)."""
    return loop.run_processes(config.device, lambda procs: _train(config, episodes, procs))


def _train(config: TrainConfig, episodes, procs: loop.Processes) -> Path:
    loop.prepare(config, procs)
    mc = config.model
    episodes = episodes if episodes is not None else loop.load_episodes(config.data_dirs, config.strict_data)
    train_eps, val_eps = split_episodes(episodes, config.val_fraction)
    train_ds = WindowDataset(train_eps, mc.context_steps, mc.horizon_steps, mc.model_dt, config.skip_s)
    val_ds = loop.even_subset(WindowDataset(val_eps, mc.context_steps, mc.horizon_steps, mc.model_dt,
                                            config.skip_s), config.val_samples) if val_eps else None
    model = WorldModel(mc).to(procs.device)
    provenance = {}
    if config.init_from:  # ignored when resuming: last.pt has the weights
        start = load_checkpoint(config.init_from, expected_config=mc, map_location=procs.device)
        model.load_state_dict(start["model"])
        provenance["init_from_sha256"] = content_hash(start)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.99))
    val_batch = max(config.batch_size // procs.world, 32)
    return trainer.run(config, trainer.Task(
        name="world model", model=model, optimizer=opt, train_set=train_ds, val_set=val_ds,
        loss=lambda m, b: m(b["frames"], b["actions"], config.loss_weights, b["motion"]),
        validate=lambda: validate(model, val_ds, procs.device, val_batch, config.loss_weights),
        val_columns=("val_loss", "val_psnr_last"), metric="val_psnr_last", higher_is_better=True,
        save=save_checkpoint, load=lambda path: load_checkpoint(path, expected_config=mc, map_location=procs.device),
        postfix=lambda m: {"loss": f"{m['loss']:.4f}", "psnr": f"{m['psnr_last']:.1f}"},
        rate_name="frames_per_s", rate_scale=mc.context_steps + mc.horizon_steps,
        extra={"train_episodes": [e.name for e in train_eps], "val_episodes": [e.name for e in val_eps],
               **provenance}), procs)
