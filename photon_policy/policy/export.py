"""The policy's per-frame compute, run eagerly or as TorchScript, and `photon export`.

Both backends take the same tensors (DrivingPolicy.frame_step): the new camera frame
(1, 3, H, W) uint8, the cached latents of the earlier context frames (1, T-1, C, S, S),
actions (1, T, 2) and extras (1, 5), and return (command (1, 2), the frame's latent).
An exported TorchScript file is a traced FrameStep with the PolicyConfig in an extra file
(`photon_policy.json`), so it alone rebuilds everything the node needs. The ONNX Runtime
backend is photon_policy.policy.onnx_backend.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from photon_policy.policy.checkpoint import CheckpointError, load_policy
from photon_policy.policy.model import DrivingPolicy, FrameStep, PolicyConfig

EXTRA_FILE = "photon_policy.json"
FORMAT = "photon-policy-torchscript"


class EagerCompute:
    """DrivingPolicy.frame_step in PyTorch."""

    kind = "eager"

    def __init__(self, policy: DrivingPolicy) -> None:
        self.policy = policy.eval()
        self.config = policy.config
        self.device = next(policy.parameters()).device

    def __call__(self, frame, past_latents, actions, extras) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.inference_mode():
            return self.policy.frame_step(frame, past_latents, actions, extras)


class TorchScriptCompute:
    """The same compute, traced: no Python in the model's forward."""

    kind = "torchscript"

    def __init__(self, module: torch.jit.ScriptModule, config: PolicyConfig, device: torch.device) -> None:
        self.module = module.eval()
        self.config = config
        self.device = device

    def __call__(self, frame, past_latents, actions, extras) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.inference_mode():
            return self.module(frame, past_latents, actions, extras)


def example_inputs(config: PolicyConfig, device: torch.device | str = "cpu", batch: int = 1) -> tuple[torch.Tensor, ...]:
    """Tensors of the per-frame compute's shapes (zeros), `batch` frames at once."""
    wm = config.wm
    t, size, s = wm.context_steps, wm.image_size, wm.latent_size
    return (torch.zeros(batch, 3, size, size, dtype=torch.uint8, device=device),
            torch.zeros(batch, t - 1, wm.latent_channels, s, s, device=device),
            torch.zeros(batch, t, 2, device=device), torch.zeros(batch, 5, device=device))


def trace(policy: DrivingPolicy, module: type[FrameStep] = FrameStep, batch: int = 1) -> torch.jit.ScriptModule:
    """torch.jit.trace of FrameStep(policy) (or FrameTrunk, what RL runs), for `batch` frames at once
    (shapes are fixed in the trace: the tracer's warnings about shape checks turned constants are
    expected)."""
    device = next(policy.parameters()).device
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates torch.jit
        return torch.jit.trace(module(policy.eval()), example_inputs(policy.config, device, batch))


def export_torchscript(ckpt: str | Path, out: str | Path) -> Path:
    """Trace the checkpoint's policy and save it, config inside; returns the written path."""
    policy, _ = load_policy(ckpt)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "model_config": policy.config.to_dict(), "source": str(ckpt)}
    tmp = out.with_name(out.name + ".tmp")
    trace(policy).save(str(tmp), _extra_files={EXTRA_FILE: json.dumps(meta)})
    tmp.replace(out)
    return out


def load_torchscript(path: str | Path, device: Any = "cpu") -> TorchScriptCompute:
    """An exported file -> its compute; CheckpointError naming what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such TorchScript file")
    extra = {EXTRA_FILE: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except (RuntimeError, ValueError, OSError) as e:
        raise CheckpointError(f"{path}: not a TorchScript file, or a damaged one ({type(e).__name__})") from e
    try:
        meta = json.loads(extra[EXTRA_FILE])
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}")
        config = PolicyConfig.from_dict(meta["model_config"])
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"{path}: TorchScript file without a valid Photon policy description "
                              f"({EXTRA_FILE}: {e}); export it with `photon export`") from e
    return TorchScriptCompute(module, config, torch.device(device))


BACKENDS = ("eager", "torchscript", "onnx")


def load_compute(checkpoint: str | Path, export: str, device: Any = "cpu", threads: int = 1):
    """The node's backend: `export` is eager (the checkpoint in PyTorch), torchscript (the
    checkpoint traced at start-up), onnx (the checkpoint exported once to ONNX and run by ONNX
    Runtime) or the path of a file written by `photon export` (.onnx or TorchScript; then
    `checkpoint` is not read)."""
    from photon_policy.policy import onnx_backend

    if export in ("eager", "torchscript"):
        policy, _ = load_policy(checkpoint, map_location=device)
        if export == "eager":
            return EagerCompute(policy)
        return TorchScriptCompute(trace(policy), policy.config, torch.device(device))
    if export == "onnx":
        return onnx_backend.load_onnx(onnx_backend.cached_onnx(checkpoint), threads)
    if Path(export).suffix == ".onnx":
        return onnx_backend.load_onnx(export, threads)
    return load_torchscript(export, device)
