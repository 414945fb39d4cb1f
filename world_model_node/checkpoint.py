"""Self-describing world-model checkpoints: the file alone rebuilds the model.

A checkpoint is a plain dict (format tag, version, model config as a dict,
state_dict, optimizer state, step, epoch, train config, metrics), written
atomically and read back only with `torch.load(weights_only=True)`, so loading
a file never runs code from it. Anything unexpected raises CheckpointError
saying what is wrong.
"""
from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from world_model_node.model import WorldModel, WorldModelConfig

FORMAT = "photon-world-model"
VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot or must not be used; the message says why."""


def save_checkpoint(path: str | Path, model: WorldModel, optimizer: torch.optim.Optimizer | None = None,
                    step: int = 0, epoch: int = 0, train_config: dict | None = None,
                    metrics: dict | None = None, extra: dict | None = None) -> Path:
    """Write atomically (temp file + rename): a crash mid-write never leaves a truncated file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = getattr(model, "module", model)  # unwrap DDP
    ckpt = {
        "format": FORMAT, "version": VERSION,
        "model_config": model.config.to_dict(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": int(step), "epoch": int(epoch),
        "train_config": train_config or {}, "metrics": metrics or {}, "extra": extra or {},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, expected_config: WorldModelConfig | None = None,
                    image_size: int | None = None, map_location: Any = "cpu") -> dict:
    """Read and validate a checkpoint dict; raises CheckpointError naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, weights_only=True, map_location=map_location)
    except pickle.UnpicklingError as e:
        if "Unsupported global" in str(e):
            raise CheckpointError(f"{path}: not a Photon world-model checkpoint (it holds Python "
                                  f"objects that weights-only loading refuses)") from e
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({e})") from e
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a Photon world-model checkpoint (no '{FORMAT}' format tag)")
    if not isinstance(ckpt.get("version"), int) or ckpt["version"] > VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {ckpt.get('version')!r} is newer "
                              f"than this code reads ({VERSION})")
    for key in ("model_config", "model"):
        if not isinstance(ckpt.get(key), dict):
            raise CheckpointError(f"{path}: corrupt checkpoint: '{key}' missing")
    try:
        config = WorldModelConfig.from_dict(ckpt["model_config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: checkpoint model config is not valid here ({e})") from e
    want = image_size if image_size is not None else (expected_config.image_size if expected_config else None)
    if want is not None and config.image_size != want:
        raise CheckpointError(f"{path}: checkpoint is for {config.image_size}x{config.image_size} images, "
                              f"expected {want}x{want}")
    if expected_config is not None:
        got, exp = config.to_dict(), expected_config.to_dict()
        diff = [f"{k}: checkpoint {got[k]!r} != expected {exp[k]!r}" for k in exp if got.get(k) != exp[k]]
        if diff:
            raise CheckpointError(f"{path}: checkpoint model config does not match the expected one ("
                                  + "; ".join(diff) + ")")
    ckpt["model_config_obj"] = config
    return ckpt


def load_model(path: str | Path, expected_config: WorldModelConfig | None = None,
               image_size: int | None = None, map_location: Any = "cpu") -> tuple[WorldModel, dict]:
    """Checkpoint -> (WorldModel in eval mode, the checkpoint dict)."""
    ckpt = load_checkpoint(path, expected_config, image_size, map_location)
    model = WorldModel(ckpt["model_config_obj"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: corrupt checkpoint: weights do not fit the model its config "
                              f"describes ({e})") from e
    if map_location is not None and not callable(map_location):
        model.to(map_location)
    return model.eval(), ckpt
