"""Issue 14, finding 4: the shipped policy with 4 KiB of random bytes written into its middle is refused
by loading, by `photon export` and by `photon eval` (given by --ckpt or --set policy.checkpoint) before
any node starts; a pickle payload is
reported as what it is, not as a truncated file."""
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from photon_policy.cli import main as photon
from photon_policy.paths import shipped_model
from photon_policy.policy.checkpoint import CheckpointError, load_policy


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory):
    data = bytearray(shipped_model("policy.pt", "policy").read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = np.random.default_rng(14).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    path = tmp_path_factory.mktemp("corrupt") / "policy.pt"
    path.write_bytes(bytes(data))
    return path


def test_corrupted_weights_are_refused_by_loading(corrupted):
    with pytest.raises(CheckpointError, match="corrupt"):
        load_policy(corrupted)


def test_export_and_eval_refuse_it_before_doing_anything(corrupted, tmp_path, capsys):
    assert photon(["export", "--ckpt", str(corrupted), "--out", str(tmp_path / "p.torchscript.pt")]) == 1
    assert "corrupt" in capsys.readouterr().err and not (tmp_path / "p.torchscript.pt").exists()
    result = subprocess.run([sys.executable, "-m", "photon_policy.cli", "eval", "--driver", "policy", "--ckpt",
                             str(corrupted), "--seeds", "100", "--log-dir", str(tmp_path / "logs")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "corrupt" in result.stderr
    assert not (tmp_path / "logs").exists()  # refused before any node started


def test_eval_and_collect_read_the_checkpoint_given_by_set_as_by_ckpt(corrupted, tmp_path, capsys):
    """`--set policy.checkpoint=X` is the checkpoint eval and collect check and drive, not the shipped one."""
    assert photon(["eval", "--driver", "policy", "--set", f"policy.checkpoint={corrupted}", "--seeds", "100",
                   "--log-dir", str(tmp_path / "logs")]) == 1
    assert "corrupt" in capsys.readouterr().err and not (tmp_path / "logs").exists()
    assert photon(["eval", "--driver", "policy", "--ckpt", str(corrupted), "--set",
                   f"policy.checkpoint={corrupted}", "--seeds", "100"]) == 2
    assert "give the policy's checkpoint once" in capsys.readouterr().err
    assert photon(["collect", "--driver", "policy", "--set", f"policy.checkpoint={corrupted}", "--seeds", "100",
                   "--out", str(tmp_path / "bags")]) == 1
    assert "corrupt" in capsys.readouterr().err and not (tmp_path / "bags").exists()


def test_a_pickle_payload_is_named_as_such(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "photon-policy", "version": 1, "model": Payload()}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="holds Python objects that weights-only loading refuses"):
        load_policy(path)
