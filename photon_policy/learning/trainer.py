"""A training run, the same for every model: what `loop.fit` does not know about.

A trainer describes its model as a Task (the network and optimizer, the datasets, the loss,
validation, which validation number picks best.pt, how to save and read its checkpoints) and
calls `run`, which owns everything else:

  resume     out_dir/last.pt (weights, optimizer, step, best so far) continues the run exactly;
             a last.pt written with another seed is refused (it would not be a continuation)
  DDP        the model is wrapped for torchrun's processes (gloo on CPU, nccl on CUDA)
  logging    log.csv (appended on resume; TensorBoard events when installed), a tqdm bar
  intervals  every val_interval steps and at the end, rank 0 validates, writes last.pt (with
             the optimizer) and best.pt (weights only, the file to ship) when the metric improved
  failure    a non-finite loss stops the run with the reason (TrainingDiverged); last.pt keeps
             the last good interval
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

from photon_policy.learning import loop
from photon_policy.learning.checkpoint import CheckpointError


@dataclass
class Task:
    """What one model's trainer supplies to `run`."""
    name: str
    """What is trained, for messages ("world model", "policy")."""
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    train_set: Dataset
    val_set: Dataset | None
    loss: Callable[[torch.nn.Module, dict], tuple[torch.Tensor, dict]]
    """(the model, DDP-wrapped when distributed; a batch on the device) -> (loss, metrics with "loss")."""
    validate: Callable[[], dict[str, float]]
    """Rank 0, every interval: validation numbers, keyed by `val_columns`."""
    val_columns: tuple[str, ...]
    """log.csv's validation columns, in order."""
    metric: str
    """The validation number that picks best.pt."""
    higher_is_better: bool
    save: Callable[..., Path]
    """save(path, model, optimizer or None, **checkpoint fields) in the model's checkpoint format."""
    load: Callable[[Path], dict]
    """Read this run's last.pt (checking it describes the same network); CheckpointError otherwise."""
    postfix: Callable[[dict], dict]
    """Training metrics -> what the progress bar shows."""
    rate_name: str = "samples_per_s"
    rate_scale: float = 1.0
    """log.csv's throughput column: samples per second times this (frames per window, ...)."""
    find_unused_parameters: bool = False
    """Parts of the model get no gradient (DDP must be told)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Written into every checkpoint's `extra` (provenance: episodes, the checkpoint it started from)."""


class TrainingDiverged(RuntimeError):
    """The loss stopped being finite; the message says when, and which checkpoint is the last good one."""


def run(config: Any, task: Task, procs: loop.Processes) -> Path:
    """Train (or resume) to config.max_steps; returns best.pt, or last.pt when nothing was validated.
    `config` is the trainer's config (loop.SharedSettings fields, max_steps, batch_size, lr, out_dir)."""
    out = Path(config.out_dir)
    last_path, best_path = out / "last.pt", out / "best.pt"
    better = (lambda a, b: a > b) if task.higher_is_better else (lambda a, b: a < b)
    best = -math.inf if task.higher_is_better else math.inf
    step = 0
    if config.resume and last_path.exists():
        ckpt = task.load(last_path)
        if ckpt["train_config"].get("seed") != config.seed:
            raise CheckpointError(f"{last_path}: written with seed {ckpt['train_config'].get('seed')}, "
                                  f"this run has seed {config.seed}: refusing a resume that would not continue it")
        task.model.load_state_dict(ckpt["model"])
        task.optimizer.load_state_dict(ckpt["optimizer"])
        step = ckpt["step"]
        best = ckpt["extra"].get(f"best_{task.metric}", best)
    if len(task.train_set) < config.batch_size:
        raise ValueError(f"{len(task.train_set)} training samples, fewer than one batch of {config.batch_size}")
    wrapped = (DistributedDataParallel(task.model, find_unused_parameters=task.find_unused_parameters)
               if procs.distributed else task.model)

    log = None
    if procs.is_main:
        log = loop.RunLog(out, ["step", "epoch", "train_loss", *task.val_columns, task.rate_name, "lr",
                                "elapsed_s"], fresh=step == 0)
        print(f"{task.name}: {sum(p.numel() for p in task.model.parameters())} parameters, "
              f"{len(task.train_set)} train samples, {len(task.val_set) if task.val_set else 0} val samples, "
              f"{procs.world} process(es) on {procs.device}, step {step}/{config.max_steps}", flush=True)
    t_start = time.perf_counter()

    def on_interval(at: loop.Interval) -> None:
        nonlocal best
        row = {"train_loss": at.train_loss, task.rate_name: at.samples_per_s * task.rate_scale, "lr": at.lr}
        if task.val_set is not None:
            row |= task.validate()
        improved = task.metric in row and better(row[task.metric], best)
        if improved:
            best = row[task.metric]
        kw = dict(step=at.step, epoch=at.epoch, train_config=config.to_dict(), metrics=row,
                  extra={f"best_{task.metric}": best, "world_size": procs.world, **task.extra})
        task.save(last_path, task.model, task.optimizer, **kw)
        if improved:
            task.save(best_path, task.model, None, **kw)
        log.write(at.step, [at.step, at.epoch] + [f"{row.get(c, math.nan):.6g}" for c in log.columns[2:-1]]
                  + [f"{time.perf_counter() - t_start:.1f}"], row)
        at.write(f"step {at.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "lr"))

    try:
        loop.fit(config, task.model, lambda batch: _finite(task.loss(wrapped, batch), procs, last_path),
                 task.optimizer, task.train_set, procs, step, on_interval, task.postfix)
    finally:
        if log is not None:
            log.close()
    return best_path if best_path.exists() else last_path


def _finite(result: tuple[torch.Tensor, dict], procs: loop.Processes, last_path: Path) -> tuple[torch.Tensor, dict]:
    """The loss, or TrainingDiverged when it is not finite on any process (all processes stop together)."""
    loss, metrics = result
    bad = torch.tensor([0.0 if torch.isfinite(loss.detach()).item() else 1.0], device=loss.device)
    if procs.distributed:
        torch.distributed.all_reduce(bad)
    if bad.item() > 0:
        kept = f"{last_path} holds the last good interval" if last_path.exists() else "no checkpoint was written"
        raise TrainingDiverged(f"the training loss is not finite ({loss.item()}): stopping ({kept}); "
                               "check the data for non-finite values and the learning rate")
    return loss, metrics
