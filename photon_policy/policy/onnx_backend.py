"""The policy's per-frame compute as ONNX, run by ONNX Runtime: `photon export --format onnx` and
policy_node's `export: onnx`.

The graph is FrameStep (photon_policy.policy.model) exported with torch.onnx (the dynamo exporter,
weights in the one .onnx file), with the same inputs and outputs as the other backends (see
photon_policy.policy.export). Its metadata (`photon_policy`) carries the PolicyConfig and the
source checkpoint's content hash, so the file alone rebuilds what the node needs.

`export: onnx` on the node exports the checkpoint once into a cache keyed by the weights' content
hash (PHOTON_CACHE, default ~/.cache/photon): exporting takes tens of seconds on a small CPU, so
it is not repeated at every start.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from photon_policy.learning.checkpoint import content_hash
from photon_policy.policy.checkpoint import CheckpointError, load_policy, load_policy_checkpoint
from photon_policy.policy.model import FrameStep, PolicyConfig

FORMAT = "photon-policy-onnx"
METADATA_KEY = "photon_policy"
INPUTS = ("frame", "past_latents", "actions", "extras")
OUTPUTS = ("command", "latent")


def cache_dir() -> Path:
    return Path(os.environ.get("PHOTON_CACHE", Path.home() / ".cache" / "photon"))


def export_onnx(ckpt: str | Path, out: str | Path) -> Path:
    """Export the checkpoint's per-frame compute to one .onnx file (config inside); returns its path."""
    import onnx

    from photon_policy.policy.export import example_inputs

    policy, meta = load_policy(ckpt)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own deprecation and tracing notes
        torch.onnx.export(FrameStep(policy.eval()), example_inputs(policy.config), str(tmp), dynamo=True,
                          external_data=False, input_names=list(INPUTS), output_names=list(OUTPUTS), verbose=False)
    model = onnx.load(str(tmp))
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps({
        "format": FORMAT, "model_config": policy.config.to_dict(), "source": str(ckpt),
        "weights_sha256": content_hash(meta)})
    onnx.save(model, str(tmp))
    tmp.replace(out)
    return out


class OnnxCompute:
    """DrivingPolicy.frame_step through ONNX Runtime: torch tensors in and out, like the others."""

    kind = "onnx"

    def __init__(self, session: Any, config: PolicyConfig) -> None:
        self.session = session
        self.config = config
        self.device = torch.device("cpu")

    def __call__(self, frame, past_latents, actions, extras) -> tuple[torch.Tensor, torch.Tensor]:
        feeds = {name: np.ascontiguousarray(t.detach().cpu().numpy())
                 for name, t in zip(INPUTS, (frame, past_latents, actions, extras))}
        command, latent = self.session.run(list(OUTPUTS), feeds)
        return torch.from_numpy(command), torch.from_numpy(latent)


def load_onnx(path: str | Path, threads: int = 1) -> OnnxCompute:
    """A file written by export_onnx -> its compute; CheckpointError naming what is wrong."""
    import onnxruntime

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such ONNX file")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own untyped errors for a bad file
        raise CheckpointError(f"{path}: not an ONNX model, or a damaged one ({type(e).__name__})") from e
    try:
        meta = json.loads(session.get_modelmeta().custom_metadata_map[METADATA_KEY])
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}")
        config = PolicyConfig.from_dict(meta["model_config"])
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: ONNX file without a valid Photon policy description ({e}); "
                              "export it with `photon export --format onnx`") from e
    if tuple(i.name for i in session.get_inputs()) != INPUTS:
        raise CheckpointError(f"{path}: inputs {[i.name for i in session.get_inputs()]}, expected {list(INPUTS)}")
    return OnnxCompute(session, config)


def cached_onnx(ckpt: str | Path) -> Path:
    """The checkpoint exported to ONNX, from the cache when its content was exported before."""
    sha = content_hash(load_policy_checkpoint(ckpt))
    path = cache_dir() / f"policy-{sha[:16]}.onnx"
    return path if path.is_file() else export_onnx(ckpt, path)
