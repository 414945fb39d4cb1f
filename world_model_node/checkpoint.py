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
from typing import Any, TypeVar

import torch

from world_model_node.model import WorldModel, WorldModelConfig

ModelT = TypeVar("ModelT", bound=torch.nn.Module)

FORMAT = "photon-world-model"
VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot or must not be used; the message says why."""


def save_checkpoint(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    step: int = 0, epoch: int = 0, train_config: dict | None = None,
                    metrics: dict | None = None, extra: dict | None = None,
                    fmt: str = FORMAT, version: int = VERSION) -> Path:
    """Write atomically (temp file + rename): a crash mid-write never leaves a truncated file.
    `model` has a `config` with to_dict() (a WorldModel, or another Photon model with its `fmt`)."""
    model = getattr(model, "module", model)  # unwrap DDP
    return write_checkpoint(path, {
        "format": fmt, "version": version,
        "model_config": model.config.to_dict(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": int(step), "epoch": int(epoch),
        "train_config": train_config or {}, "metrics": metrics or {}, "extra": extra or {},
    })


def write_checkpoint(path: str | Path, ckpt: dict) -> Path:
    """torch.save atomically (temp file + rename): a crash mid-write never leaves a truncated file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | Path, fmt: str, version: int, what: str, map_location: Any = "cpu",
                    other_formats: dict[str, str] | None = None) -> dict:
    """A Photon checkpoint dict of format `fmt` (with dicts `model_config` and `model`), loaded
    weights-only; CheckpointError naming the problem otherwise. `other_formats` maps format tags
    of other Photon checkpoints to what to tell a user who passed one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, weights_only=True, map_location=map_location)
    except pickle.UnpicklingError as e:
        if "Unsupported global" in str(e):
            raise CheckpointError(f"{path}: not a Photon {what} checkpoint (it holds Python "
                                  f"objects that weights-only loading refuses)") from e
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({e})") from e
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({type(e).__name__}: {e})") from e
    found = ckpt.get("format") if isinstance(ckpt, dict) else None
    if found != fmt:
        hint = (other_formats or {}).get(found) if isinstance(found, str) else None
        raise CheckpointError(f"{path}: not a Photon {what} checkpoint "
                              + (f"({hint})" if hint else f"(no '{fmt}' format tag)"))
    if not isinstance(ckpt.get("version"), int) or ckpt["version"] > version:
        raise CheckpointError(f"{path}: checkpoint format version {ckpt.get('version')!r} is newer "
                              f"than this code reads ({version})")
    for key in ("model_config", "model"):
        if not isinstance(ckpt.get(key), dict):
            raise CheckpointError(f"{path}: corrupt checkpoint: '{key}' missing")
    return ckpt


def check_image_size(path: Path, image_size: int, want: int | None) -> None:
    if want is not None and image_size != want:
        raise CheckpointError(f"{path}: checkpoint is for {image_size}x{image_size} images, "
                              f"expected {want}x{want}")


def check_config(path: Path, got: dict, expected: dict) -> None:
    """CheckpointError listing every field where the checkpoint's config differs from the expected one."""
    diff = [f"{k}: checkpoint {got.get(k)!r} != expected {v!r}" for k, v in expected.items() if got.get(k) != v]
    if diff:
        raise CheckpointError(f"{path}: checkpoint model config does not match the expected one ("
                              + "; ".join(diff) + ")")


def load_checkpoint(path: str | Path, expected_config: WorldModelConfig | None = None,
                    image_size: int | None = None, map_location: Any = "cpu") -> dict:
    """Read and validate a checkpoint dict; raises CheckpointError naming the problem."""
    path = Path(path)
    ckpt = read_checkpoint(path, FORMAT, VERSION, "world-model", map_location,
                           {"photon-policy": "it is a driving-policy checkpoint"})
    try:
        config = WorldModelConfig.from_dict(ckpt["model_config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: checkpoint model config is not valid here ({e})") from e
    check_image_size(path, config.image_size,
                     image_size if image_size is not None else (expected_config.image_size if expected_config else None))
    if expected_config is not None:
        check_config(path, config.to_dict(), expected_config.to_dict())
    ckpt["model_config_obj"] = config
    return ckpt


def load_model(path: str | Path, expected_config: WorldModelConfig | None = None,
               image_size: int | None = None, map_location: Any = "cpu") -> tuple[WorldModel, dict]:
    """Checkpoint -> (WorldModel in eval mode, the checkpoint dict)."""
    ckpt = load_checkpoint(path, expected_config, image_size, map_location)
    return with_weights(path, WorldModel(ckpt["model_config_obj"]), ckpt, map_location), ckpt


def with_weights(path: str | Path, model: ModelT, ckpt: dict, map_location: Any = "cpu") -> ModelT:
    """`model` (built from the checkpoint's config) with the checkpoint's weights, on map_location,
    in eval mode; CheckpointError if the weights do not fit it."""
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: corrupt checkpoint: weights do not fit the model its config "
                              f"describes ({e})") from e
    if map_location is not None and not callable(map_location):
        model.to(map_location)
    return model.eval()
