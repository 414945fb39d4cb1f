"""The one training loop and checkpoint format every trainer shares (photon_policy.learning), exercised
through the world model's trainer: resuming is an exact continuation, DDP over two CPU processes,
a diverging run stops with the reason, checkpoints verify their content."""
import math
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from photon_policy.learning.checkpoint import CheckpointError, weights_sha256
from photon_policy.learning.trainer import TrainingDiverged
from test_world_model import _episodes, _train_config, one_thread, tiny_config  # noqa: F401
from world_model_node.checkpoint import load_checkpoint, load_model, save_checkpoint
from world_model_node.model import WorldModel
from world_model_node.train import train


def test_resume_is_an_identical_continuation(tmp_path):
    eps = _episodes()
    train(_train_config(tmp_path / "full"), eps)
    train(_train_config(tmp_path / "split", stop_at_step=2), eps)
    assert torch.load(tmp_path / "split" / "last.pt", weights_only=True)["step"] == 2
    train(_train_config(tmp_path / "split"), eps)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 4
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    lines = (tmp_path / "split" / "log.csv").read_text().splitlines()
    assert lines[0].split(",")[:5] == ["step", "epoch", "train_loss", "val_loss", "val_psnr_last"]
    assert [ln.split(",")[0] for ln in lines[1:]] == ["2", "4"]
    with pytest.raises(CheckpointError, match="written with seed 0, this run has seed 1"):
        train(_train_config(tmp_path / "split", seed=1, max_steps=6), eps)


def test_a_non_finite_loss_stops_the_run_with_the_reason(tmp_path):
    eps = _episodes()
    for e in eps:
        e.commands[50:] = np.nan  # what a broken recording would hold
    with pytest.raises(TrainingDiverged, match="loss is not finite"):
        train(_train_config(tmp_path / "nan", max_steps=20), eps)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, port, out, eps):
    import os
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2",
                      RANK=str(rank), LOCAL_RANK=str(rank))
    train(_train_config(out, max_steps=3, val_interval=3), eps)


def test_ddp_two_cpu_processes_gloo(tmp_path):
    mp.spawn(_ddp_worker, args=(_free_port(), str(tmp_path), _episodes()), nprocs=2, join=True)
    model, ckpt = load_model(tmp_path / "last.pt", expected_config=tiny_config())
    assert ckpt["step"] == 3 and ckpt["extra"]["world_size"] == 2
    assert (tmp_path / "log.csv").read_text().count("\n") == 2


def test_checkpoints_verify_their_content(tmp_path):
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "wm.pt", WorldModel(tiny_config()))
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["weights_sha256"] == weights_sha256(ckpt["model"])
    ckpt["model"]["encoder.0.bias"][0] += 1e-3  # one weight changed after saving
    torch.save(ckpt, tmp_path / "changed.pt")
    with pytest.raises(CheckpointError, match="content hash does not match"):
        load_checkpoint(tmp_path / "changed.pt")
    ckpt["model"]["encoder.0.bias"][0] = math.inf
    ckpt["model"]["summary.weight"][1, 2] = math.nan
    ckpt.pop("weights_sha256")  # a file from before hashes: still checked for finite weights
    torch.save(ckpt, tmp_path / "nonfinite.pt")
    with pytest.raises(CheckpointError, match="non-finite values in 2 weight tensor.*encoder.0.bias.*summary.weight"):
        load_checkpoint(tmp_path / "nonfinite.pt")
