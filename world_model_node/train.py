"""Train the world model on recorded episodes; single process, or DDP under torchrun.

    torchrun --nproc_per_node=2 -m <your entry point calling train(TrainConfig(...))>

DDP is picked up from the environment torchrun sets (WORLD_SIZE > 1): gloo on
CPU, nccl on CUDA; every rank reads the data, only rank 0 validates and writes
checkpoints and logs. `batch_size` is global (split across ranks), so a run's
trajectory does not depend on how many processes share it.

Resuming: with `resume` on, a run whose out_dir holds last.pt continues from it
exactly where it stopped (weights, optimizer, step, the epoch's sample order),
so stopping and resuming gives the same result as not stopping.
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
from world_model_node.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from world_model_node.dataset import WindowDataset, split_episodes
from world_model_node.model import WorldModel, WorldModelConfig, count_parameters


@dataclass
class TrainConfig(training.SharedSettings):
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
        self.data_dirs = training.dir_list(self.data_dirs)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d


def load_episodes(data_dirs: str | Path | list) -> list[EpisodeArrays]:
    """Every bag under the data directories as EpisodeArrays."""
    return training.load_episodes(data_dirs)


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
    return training.run_processes(config.device, lambda procs: _train(config, episodes, procs))


def _train(config: TrainConfig, episodes, procs: training.Processes) -> Path:
    world, device = procs.world, procs.device
    out = training.prepare(config, procs)

    mc = config.model
    episodes = episodes if episodes is not None else load_episodes(config.data_dirs)
    train_eps, val_eps = split_episodes(episodes, config.val_fraction)
    train_ds = WindowDataset(train_eps, mc.context_steps, mc.horizon_steps, mc.model_dt, config.skip_s)
    val_ds = training.even_subset(WindowDataset(val_eps, mc.context_steps, mc.horizon_steps, mc.model_dt,
                                                config.skip_s), config.val_samples) if val_eps else None
    per_rank = config.batch_size // world
    if len(train_ds) < config.batch_size:
        raise ValueError(f"{len(train_ds)} training windows, fewer than one batch of {config.batch_size}")

    model = WorldModel(mc).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                            betas=(0.9, 0.99))
    step, best = 0, -math.inf
    last_path, best_path = out / "last.pt", out / "best.pt"
    if config.resume and last_path.exists():
        ckpt = load_checkpoint(last_path, expected_config=mc, map_location=device)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step = ckpt["step"]
        best = ckpt["extra"].get("best_val_psnr_last", -math.inf)
        if ckpt["train_config"].get("seed") != config.seed:
            raise CheckpointError(f"{last_path}: written with seed {ckpt['train_config'].get('seed')}, "
                                  f"this run has seed {config.seed}: refusing a resume that would not continue it")
    elif config.init_from:
        model.load_state_dict(load_checkpoint(config.init_from, expected_config=mc, map_location=device)["model"])
    ddp_model = DistributedDataParallel(model) if procs.distributed else model

    log = None
    if procs.is_main:
        log = training.RunLog(out, ["step", "epoch", "train_loss", "val_loss", "val_psnr_last", "frames_per_s",
                                    "lr", "elapsed_s"], fresh=step == 0)
        print(f"world model: {count_parameters(model)} parameters, {len(train_ds)} train windows from "
              f"{len(train_eps)} episodes, {len(val_ds) if val_ds else 0} val windows from {len(val_eps)}, "
              f"{world} process(es) on {device}, step {step}/{config.max_steps}", flush=True)

    frames_per_window = mc.context_steps + mc.horizon_steps
    t_start = time.perf_counter()

    def on_interval(at: training.Interval) -> None:
        nonlocal best
        fps = at.samples_per_s * frames_per_window
        row = {"train_loss": at.train_loss, "frames_per_s": fps, "lr": at.lr}
        if val_ds is not None:
            row |= validate(model, val_ds, device, max(per_rank, 32), config.loss_weights)
        improved = val_ds is not None and row["val_psnr_last"] > best
        best = max(best, row.get("val_psnr_last", -math.inf))
        kw = dict(step=at.step, epoch=at.epoch, train_config=config.to_dict(), metrics=row,
                  extra={"best_val_psnr_last": best, "world_size": world,
                         "train_episodes": [e.name for e in train_eps],
                         "val_episodes": [e.name for e in val_eps]})
        save_checkpoint(last_path, model, optimizer=opt, **kw)
        if improved:  # the one to ship: no optimizer state, a third of the size
            save_checkpoint(best_path, model, **kw)
        log.write(at.step, [at.step, at.epoch, f"{row['train_loss']:.6f}",
                            f"{row.get('val_loss', float('nan')):.6f}",
                            f"{row.get('val_psnr_last', float('nan')):.3f}", f"{fps:.1f}",
                            f"{at.lr:.6g}", f"{time.perf_counter() - t_start:.1f}"], row)
        at.write(f"step {at.step}: train {row['train_loss']:.5f} "
                 f"val {row.get('val_loss', float('nan')):.5f} "
                 f"psnr@{mc.horizon_steps * mc.model_dt:.1f}s "
                 f"{row.get('val_psnr_last', float('nan')):.2f} dB, {fps:.0f} frames/s")

    try:
        training.fit(config, model, lambda b: ddp_model(b["frames"], b["actions"], config.loss_weights, b["motion"]), opt,
                     train_ds, procs, step, on_interval,
                     lambda m: {"loss": f"{m['loss']:.4f}", "psnr": f"{m['psnr_last']:.1f}"})
    finally:
        if log is not None:
            log.close()
    return best_path if best_path.exists() else last_path
