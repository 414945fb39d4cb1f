"""Self-describing checkpoints shared by every Photon model: the file alone rebuilds the model.

A checkpoint is a plain dict (format tag, version, model config as a dict, state_dict,
optimizer state, step, epoch, train config, metrics, extra) plus `weights_sha256`, a hash of
the weights' content. It is written atomically and read back only with
`torch.load(weights_only=True)`, so loading never runs code from the file. Reading checks the
format tag and version, recomputes the hash (a flipped byte anywhere in the weights is
refused) and refuses non-finite weights by name. Anything unexpected raises CheckpointError
saying what is wrong.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, TypeVar

import torch

ModelT = TypeVar("ModelT", bound=torch.nn.Module)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot or must not be used; the message says why."""


def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """Hash of a state dict's content: names, dtypes, shapes and bytes, in name order. Equal weights
    give equal hashes whatever the file around them (optimizer state, metrics, torch version)."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def content_hash(ckpt: dict) -> str:
    """The weights' content hash of a checkpoint dict read by read_checkpoint (computed for files
    that predate stored hashes): how a checkpoint names the one it was trained from."""
    return ckpt.get("weights_sha256") or weights_sha256(ckpt["model"])


def file_sha256(path: str | Path) -> str:
    """Hash of a file's bytes (exported models, bags)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(path: str | Path, model: torch.nn.Module, fmt: str, version: int,
                    optimizer: torch.optim.Optimizer | None = None, step: int = 0, epoch: int = 0,
                    train_config: dict | None = None, metrics: dict | None = None,
                    extra: dict | None = None) -> Path:
    """Write `model` (which has a `config` with to_dict()) as a checkpoint of format `fmt`, atomically."""
    model = getattr(model, "module", model)  # unwrap DDP
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return write_checkpoint(path, {
        "format": fmt, "version": version,
        "model_config": model.config.to_dict(),
        "model": weights, "weights_sha256": weights_sha256(weights),
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
    weights-only and verified; CheckpointError naming the problem otherwise. `other_formats`
    maps format tags of other Photon checkpoints to what to tell a user who passed one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, weights_only=True, map_location=map_location)
    except pickle.UnpicklingError as e:
        if "unsupported global" in str(e).lower():
            raise CheckpointError(f"{path}: not a Photon {what} checkpoint (it holds Python objects that "
                                  f"weights-only loading refuses: never load it with weights_only=False)") from e
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({e})") from e
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError, IndexError,
            UnicodeDecodeError) as e:
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
    verify_weights(path, ckpt)
    return ckpt


def verify_weights(path: Path, ckpt: dict) -> None:
    """CheckpointError if a weight is not a tensor, is not finite (named), or the content hash
    differs from the one written with the file (a checkpoint without a hash predates hashing
    and is checked for finiteness only)."""
    weights = ckpt["model"]
    bad_type = [k for k, v in weights.items() if not isinstance(v, torch.Tensor)]
    if bad_type:
        raise CheckpointError(f"{path}: corrupt checkpoint: weights {bad_type[:5]} are not tensors")
    nonfinite = [k for k, v in weights.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if nonfinite:
        raise CheckpointError(f"{path}: corrupt checkpoint: non-finite values in {len(nonfinite)} weight "
                              f"tensor(s): {', '.join(nonfinite[:5])}{' ...' if len(nonfinite) > 5 else ''}")
    stored = ckpt.get("weights_sha256")
    if stored is not None and stored != weights_sha256(weights):
        raise CheckpointError(f"{path}: corrupt checkpoint: the weights' content hash does not match the one "
                              f"written with them (the file was changed or damaged after it was saved)")


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
