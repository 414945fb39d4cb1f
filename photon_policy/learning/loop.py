"""The training loop shared by the world model's and the policy's trainers.

Both trainers are a dataclass config, a dataset of samples cut from recorded
episodes, a model whose forward returns (loss, metrics), and this loop:
AdamW with linear warmup and cosine decay, gradient clipping, a tqdm bar,
periodic validation that writes log.csv (and TensorBoard events when
installed) and checkpoints, and DDP under torchrun (gloo on CPU, nccl on CUDA;
every rank reads the data, rank 0 validates and writes). What differs per
model (its forward, its validation, its checkpoint) comes in as callables.

Resuming continues exactly where a run stopped: `fit` starts at the step the
caller loaded from last.pt and skips the part of that epoch's sample order
already seen, so stopping and resuming gives the same result as not stopping.

Optimizer parameter groups may carry `lr_scale` (a multiplier of the scheduled
learning rate) and `frozen_until` (learning rate 0 before that step).
"""
from __future__ import annotations

import csv
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from tqdm import tqdm

from photon_policy.bags.episode_arrays import EpisodeArrays

T = TypeVar("T")


@dataclass
class SharedSettings:
    """Training settings both trainers have, with the same defaults (their configs extend it)."""
    val_fraction: float = 0.1
    """Share of episodes held out for validation, chosen by a hash of the episode name."""
    skip_s: float = 1.0
    """Seconds skipped at the start of every episode (CarRacing's zoom-in)."""
    min_lr_frac: float = 0.05
    """Learning rate at the last step, as a fraction of lr."""
    warmup_steps: int = 50
    """Linear learning-rate warmup, steps."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Gradient norm clip (0 = off)."""
    stop_at_step: int = 0
    """Stop early at this step (writing last.pt) to continue later with resume; 0 = run to max_steps."""
    val_interval: int = 250
    """Validate, log and write last.pt every this many steps (and at the end)."""
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
    strict_data: bool = False
    """Stop at a bag that cannot be read, instead of skipping and listing it."""


class LoopConfig(Protocol):
    """The fields of a trainer's config that `fit` and `lr_at` read."""
    batch_size: int
    lr: float
    min_lr_frac: float
    warmup_steps: int
    grad_clip: float
    max_steps: int
    stop_at_step: int
    val_interval: int
    seed: int
    num_workers: int
    progress: bool


def dir_list(data_dirs: str | Path | Iterable[str | Path]) -> list[str]:
    """One directory or several -> a list of paths as strings (what configs store)."""
    return [str(data_dirs)] if isinstance(data_dirs, (str, Path)) else [str(d) for d in data_dirs]


def load_episodes(data_dirs: str | Path | Iterable[str | Path], strict: bool = False) -> list[EpisodeArrays]:
    """Every episode of every bag under the data directories, as EpisodeArrays; an unreadable bag
    is skipped and listed, or with `strict` stops the run (photon_policy.bags.data_dirs)."""
    from photon_policy.bags.data_dirs import read_data_dirs

    return [read.arrays for read in read_data_dirs(dir_list(data_dirs), strict).episodes]


def lr_at(step: int, config: LoopConfig) -> float:
    """Linear warmup to config.lr, then cosine decay to min_lr_frac * lr at max_steps."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    t = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    frac = config.min_lr_frac + (1 - config.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    return config.lr * frac


class SkipSampler(Sampler):
    """The first `skip` indices of an epoch's order are dropped: resuming mid-epoch."""

    def __init__(self, inner: Sampler, skip: int) -> None:
        self.inner, self.skip = inner, skip

    def __iter__(self):
        for i, idx in enumerate(self.inner):
            if i >= self.skip:
                yield idx

    def __len__(self) -> int:
        return max(0, len(self.inner) - self.skip)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """auto -> cuda if available else cpu; bare cuda -> this process's GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank}"
    return torch.device(name)


def even_subset(dataset: Dataset, n: int) -> Dataset:
    """At most n samples spread evenly over the dataset (validation sets)."""
    if len(dataset) <= n:
        return dataset
    return torch.utils.data.Subset(dataset, np.linspace(0, len(dataset) - 1, n).round().astype(int).tolist())


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def prepare(config: Any, procs: "Processes") -> Path:
    """A run's start in every process: check the batch splits, set threads, seed; returns the
    run directory (created by rank 0). `config` has batch_size, threads, seed and out_dir."""
    if config.batch_size % procs.world:
        raise ValueError(f"batch_size {config.batch_size} does not divide by {procs.world} processes")
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    out = Path(config.out_dir)
    if procs.is_main:
        out.mkdir(parents=True, exist_ok=True)
    return out


@dataclass(frozen=True)
class Processes:
    """Where this process stands in a (possibly single-process) run."""
    world: int
    rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def run_processes(device_name: str, run: Callable[[Processes], T]) -> T:
    """Call run() in this process's place of the run torchrun set up (WORLD_SIZE > 1: DDP),
    joining the process group first and leaving it after."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = resolve_device(device_name, int(os.environ.get("LOCAL_RANK", "0")))
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        return run(Processes(world, rank, device))
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()


class RunLog:
    """log.csv of a run (appended to when resuming), plus TensorBoard events if installed."""

    def __init__(self, out_dir: Path, columns: Sequence[str], fresh: bool) -> None:
        path = out_dir / "log.csv"
        self.columns = list(columns)
        fresh = fresh or not path.exists()
        self._file = open(path, "w" if fresh else "a", newline="")
        self._csv = csv.writer(self._file)
        if fresh:
            self._csv.writerow(columns)
        self._tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter
            self._tb = SummaryWriter(str(out_dir / "tb"))
        except ImportError:  # TensorBoard is optional; log.csv has everything
            pass

    def write(self, step: int, cells: Sequence[Any], scalars: dict[str, float]) -> None:
        self._csv.writerow(cells)
        self._file.flush()
        if self._tb is not None:
            for k, v in scalars.items():
                self._tb.add_scalar(k, v, step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


@dataclass(frozen=True)
class Interval:
    """What `fit` hands the trainer at each validation point (rank 0)."""
    step: int
    epoch: int
    train_loss: float
    samples_per_s: float
    lr: float
    stop: bool
    write: Callable[[str], None]
    """Print a line without breaking the progress bar."""


def fit(config: LoopConfig, model: torch.nn.Module, forward: Callable[[dict], tuple[torch.Tensor, dict]],
        optimizer: torch.optim.Optimizer, train_ds: Dataset, procs: Processes, step: int,
        on_interval: Callable[[Interval], None], postfix: Callable[[dict], dict]) -> int:
    """Optimise from `step` to config.max_steps (or stop_at_step); returns the last step.

    forward(batch on the device) -> (loss, metrics with "loss"), through DDP when distributed;
    on_interval runs on rank 0 every val_interval steps and at the end (validate, checkpoint,
    log), after which all ranks meet at a barrier.
    """
    per_rank = config.batch_size // procs.world
    sampler = DistributedSampler(train_ds, num_replicas=procs.world, rank=procs.rank, shuffle=True,
                                 seed=config.seed, drop_last=True)
    steps_per_epoch = len(sampler) // per_rank
    bar = tqdm(total=config.max_steps, initial=step, disable=not (procs.is_main and config.progress),
               dynamic_ncols=True)
    device = procs.device
    t_interval, n_interval, loss_interval = time.perf_counter(), 0, 0.0
    stop = step >= config.max_steps or 0 < config.stop_at_step <= step
    while not stop:
        epoch, skip = divmod(step, steps_per_epoch)
        sampler.set_epoch(epoch)
        loader = DataLoader(train_ds, batch_size=per_rank, sampler=SkipSampler(sampler, skip * per_rank),
                            num_workers=config.num_workers, drop_last=True,
                            persistent_workers=False, pin_memory=device.type == "cuda")
        for batch in loader:
            lr = lr_at(step, config)
            for g in optimizer.param_groups:
                g["lr"] = 0.0 if step < g.get("frozen_until", 0) else lr * g.get("lr_scale", 1.0)
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            loss, metrics = forward(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            step += 1
            n_interval += 1
            loss_interval += metrics["loss"]
            bar.update(1)
            bar.set_postfix(**postfix(metrics))
            stop = step == config.max_steps or step == config.stop_at_step
            if step % config.val_interval == 0 or stop:
                rate = n_interval * config.batch_size / (time.perf_counter() - t_interval)
                if procs.is_main:
                    on_interval(Interval(step, step // steps_per_epoch, loss_interval / n_interval, rate, lr,
                                         stop, bar.write))
                if procs.distributed:
                    dist.barrier()
                t_interval, n_interval, loss_interval = time.perf_counter(), 0, 0.0
            if stop:
                break
    bar.close()
    return step
