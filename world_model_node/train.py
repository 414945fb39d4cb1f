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

import csv
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Sampler
from tqdm import tqdm

from photon_policy.episode_data import EpisodeArrays
from world_model_node.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from world_model_node.dataset import WindowDataset, split_episodes
from world_model_node.model import WorldModel, WorldModelConfig, count_parameters


@dataclass
class TrainConfig:
    data_dir: str = "data/bags"
    """Directory of recorded bags, read with photon_policy.bags.reader (list_bags, read_episode)."""
    out_dir: str = "runs/world_model"
    """Where last.pt (resumable, with optimizer state), best.pt (highest validation PSNR at the
    last horizon; weights only, the file to ship), log.csv and TensorBoard events (if installed) go."""
    model: WorldModelConfig = field(default_factory=WorldModelConfig)
    """The network; stored in every checkpoint."""
    val_fraction: float = 0.1
    """Share of episodes held out for validation, chosen by a hash of the episode name."""
    skip_s: float = 1.0
    """Seconds skipped at the start of every episode (CarRacing's zoom-in)."""
    batch_size: int = 16
    """Windows per optimizer step, over all processes (must divide by the world size)."""
    lr: float = 2e-3
    """Peak learning rate (AdamW), reached after warmup, then cosine decay."""
    min_lr_frac: float = 0.05
    """Learning rate at the last step, as a fraction of lr."""
    warmup_steps: int = 50
    """Linear learning-rate warmup, steps."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Gradient norm clip (0 = off)."""
    max_steps: int = 1500
    """Optimizer steps in the whole run (the schedule's length; resuming counts on from the checkpoint)."""
    stop_at_step: int = 0
    """Stop early at this step (writing last.pt) to continue later with resume; 0 = run to max_steps."""
    val_interval: int = 250
    """Validate, log and write last.pt every this many steps (and at the end)."""
    val_samples: int = 256
    """Validation windows, spread evenly over the held-out episodes."""
    loss_weights: dict = field(default_factory=dict)
    """Overrides for WorldModel.compute_loss weights: gen, rec, lat."""
    seed: int = 0
    """Seeds weights and the sample order."""
    num_workers: int = 0
    """DataLoader worker processes per rank (0 = load in the training process)."""
    device: str = "auto"
    """auto (cuda if available), cpu, cuda or cuda:N."""
    threads: int = 2
    """torch CPU threads per process (0 = torch's default)."""
    resume: bool = True
    """Continue from out_dir/last.pt when it exists."""
    progress: bool = True
    """Show a tqdm progress bar (rank 0)."""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d


def load_episodes(data_dir: str | Path) -> list[EpisodeArrays]:
    """Every bag under data_dir as EpisodeArrays."""
    from photon_policy.bags.reader import list_bags, read_episode  # written alongside; imported lazily
    bags = list(list_bags(data_dir))
    if not bags:
        raise FileNotFoundError(f"no bags under {data_dir}")
    episodes = []
    for bag in bags:
        read = read_episode(bag)
        for warning in read.warnings:  # what the reader skipped or filled in, said once per bag
            print(f"[photon] {bag.name}: {warning}")
        episodes.append(read.arrays)
    return episodes


def lr_at(step: int, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    t = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    frac = config.min_lr_frac + (1 - config.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    return config.lr * frac


class _SkipSampler(Sampler):
    """The first `skip` indices of an epoch's order are dropped: resuming mid-epoch."""

    def __init__(self, inner: Sampler, skip: int) -> None:
        self.inner, self.skip = inner, skip

    def __iter__(self):
        for i, idx in enumerate(self.inner):
            if i >= self.skip:
                yield idx

    def __len__(self) -> int:
        return max(0, len(self.inner) - self.skip)


def _resolve_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank}"
    return torch.device(name)


@torch.no_grad()
def validate(model: WorldModel, dataset: WindowDataset, device: torch.device, batch_size: int,
             weights: dict | None = None) -> dict[str, float]:
    """Mean loss and mean per-window PSNR at the last horizon step over `dataset`."""
    model.eval()
    loss_sum, psnr_sum, n = 0.0, 0.0, 0
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        frames, actions = batch["frames"].to(device), batch["actions"].to(device)
        loss, metrics = model.compute_loss(frames, actions, weights)
        psnr_sum += metrics["psnr_last"] * len(frames)
        loss_sum += loss.item() * len(frames)
        n += len(frames)
    model.train()
    return {"val_loss": loss_sum / max(n, 1), "val_psnr_last": psnr_sum / max(n, 1)}


def _even_subset(dataset: WindowDataset, n: int) -> torch.utils.data.Dataset:
    if len(dataset) <= n:
        return dataset
    return torch.utils.data.Subset(dataset, np.linspace(0, len(dataset) - 1, n).round().astype(int).tolist())


def train(config: TrainConfig, episodes: list[EpisodeArrays] | None = None) -> Path:
    """Run (or resume) training; returns the path of the best checkpoint (last.pt without validation).

    `episodes` bypasses data_dir (tests, in-process tools)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _resolve_device(config.device, local_rank)
    distributed = world > 1
    if distributed and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        return _train(config, episodes, world, rank, device, distributed)
    finally:
        if distributed and dist.is_initialized():
            dist.destroy_process_group()


def _train(config: TrainConfig, episodes, world, rank, device, distributed) -> Path:
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} does not divide by {world} processes")
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    out = Path(config.out_dir)
    is_main = rank == 0
    if is_main:
        out.mkdir(parents=True, exist_ok=True)

    mc = config.model
    episodes = episodes if episodes is not None else load_episodes(config.data_dir)
    train_eps, val_eps = split_episodes(episodes, config.val_fraction)
    train_ds = WindowDataset(train_eps, mc.context_steps, mc.horizon_steps, mc.model_dt, config.skip_s)
    val_ds = _even_subset(WindowDataset(val_eps, mc.context_steps, mc.horizon_steps, mc.model_dt,
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
    ddp_model = DistributedDataParallel(model) if distributed else model

    sampler = DistributedSampler(train_ds, num_replicas=world, rank=rank, shuffle=True,
                                 seed=config.seed, drop_last=True)
    steps_per_epoch = len(sampler) // per_rank
    writer = None
    if is_main:
        try:
            from torch.utils.tensorboard import SummaryWriter
            writer = SummaryWriter(str(out / "tb"))
        except ImportError:
            pass
        log_path = out / "log.csv"
        new_log = not log_path.exists() or step == 0
        log_file = open(log_path, "w" if new_log else "a", newline="")
        log = csv.writer(log_file)
        if new_log:
            log.writerow(["step", "epoch", "train_loss", "val_loss", "val_psnr_last", "frames_per_s",
                          "lr", "elapsed_s"])
        print(f"world model: {count_parameters(model)} parameters, {len(train_ds)} train windows from "
              f"{len(train_eps)} episodes, {len(val_ds) if val_ds else 0} val windows from {len(val_eps)}, "
              f"{world} process(es) on {device}, step {step}/{config.max_steps}", flush=True)
    bar = tqdm(total=config.max_steps, initial=step, disable=not (is_main and config.progress),
               dynamic_ncols=True)

    frames_per_window = mc.context_steps + mc.horizon_steps
    t_start = time.perf_counter()
    t_interval, n_interval, loss_interval = time.perf_counter(), 0, 0.0
    stop = step >= config.max_steps or 0 < config.stop_at_step <= step
    while not stop:
        epoch, skip = divmod(step, steps_per_epoch)
        sampler.set_epoch(epoch)
        loader = DataLoader(train_ds, batch_size=per_rank, sampler=_SkipSampler(sampler, skip * per_rank),
                            num_workers=config.num_workers, drop_last=True,
                            persistent_workers=False, pin_memory=device.type == "cuda")
        for batch in loader:
            lr = lr_at(step, config)
            for g in opt.param_groups:
                g["lr"] = lr
            frames = batch["frames"].to(device, non_blocking=True)
            actions = batch["actions"].to(device, non_blocking=True)
            loss, metrics = ddp_model(frames, actions, config.loss_weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            step += 1
            n_interval += 1
            loss_interval += metrics["loss"]
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.4f}", psnr=f"{metrics['psnr_last']:.1f}")
            stop = step == config.max_steps or step == config.stop_at_step
            if step % config.val_interval == 0 or stop:
                fps = n_interval * config.batch_size * frames_per_window / (time.perf_counter() - t_interval)
                if is_main:
                    row = {"train_loss": loss_interval / n_interval, "frames_per_s": fps, "lr": lr}
                    if val_ds is not None:
                        row |= validate(model, val_ds, device, max(per_rank, 32), config.loss_weights)
                    improved = val_ds is not None and row["val_psnr_last"] > best
                    best = max(best, row.get("val_psnr_last", -math.inf))
                    kw = dict(step=step, epoch=step // steps_per_epoch,
                              train_config=config.to_dict(), metrics=row,
                              extra={"best_val_psnr_last": best, "world_size": world,
                                     "train_episodes": [e.name for e in train_eps],
                                     "val_episodes": [e.name for e in val_eps]})
                    save_checkpoint(last_path, model, optimizer=opt, **kw)
                    if improved:  # the one to ship: no optimizer state, a third of the size
                        save_checkpoint(best_path, model, **kw)
                    elapsed = time.perf_counter() - t_start
                    log.writerow([step, step // steps_per_epoch, f"{row['train_loss']:.6f}",
                                  f"{row.get('val_loss', float('nan')):.6f}",
                                  f"{row.get('val_psnr_last', float('nan')):.3f}", f"{fps:.1f}",
                                  f"{lr:.6g}", f"{elapsed:.1f}"])
                    log_file.flush()
                    if writer is not None:
                        for k, v in row.items():
                            writer.add_scalar(k, v, step)
                    bar.write(f"step {step}: train {row['train_loss']:.5f} "
                              f"val {row.get('val_loss', float('nan')):.5f} "
                              f"psnr@{mc.horizon_steps * mc.model_dt:.1f}s "
                              f"{row.get('val_psnr_last', float('nan')):.2f} dB, {fps:.0f} frames/s")
                if distributed:
                    dist.barrier()
                t_interval, n_interval, loss_interval = time.perf_counter(), 0, 0.0
            if stop:
                break
        if stop:
            break
    bar.close()
    if is_main:
        log_file.close()
        if writer is not None:
            writer.close()
    return best_path if best_path.exists() else last_path
