"""The ONNX Runtime backend against eager PyTorch: the same commands and latents, frame by frame through
the node's runtime, and refusals of files that are not Photon policies."""
import numpy as np
import pytest
import torch

from photon_policy.policy.checkpoint import CheckpointError, save_policy
from photon_policy.policy.export import EagerCompute, load_compute
from photon_policy.policy.onnx_backend import export_onnx, load_onnx
from photon_policy.policy.runtime import PolicyRuntime
from test_policy import driving_episode, tiny_policy
from test_world_model import one_thread  # noqa: F401


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    policy = tiny_policy(seed=4, steering_inputs=True)
    ckpt = save_policy(root / "policy.pt", policy)
    return policy, ckpt, export_onnx(ckpt, root / "policy.onnx")


def test_onnx_runtime_matches_eager_frame_by_frame(exported, tmp_path, monkeypatch):
    policy, ckpt, onnx_path = exported
    ep = driving_episode("onnx", frames=60, seed=5)
    backends = {"eager": EagerCompute(policy), "onnx": load_onnx(onnx_path)}
    results = {}
    for name, compute in backends.items():
        runtime = PolicyRuntime(compute, 3, 0.1, policy.latent_shape)
        out = []
        for k in range(len(ep)):
            t = float(ep.stamps[k])
            runtime.add_imu(t, *ep.imu[k])
            r = runtime.push(ep.frames[k], t)
            runtime.add_odom(t, ep.odom[k, 0])
            runtime.add_applied(t, *ep.commands[k])
            out.append(r.command if r.command is not None else np.full(2, np.nan))
        results[name] = np.array(out)
    assert np.isfinite(results["eager"][-20:]).all()
    np.testing.assert_allclose(results["onnx"], results["eager"], rtol=1e-4, atol=1e-5, equal_nan=True)
    # The node's `export: onnx` exports once into the cache, keyed by the weights' content hash.
    monkeypatch.setenv("PHOTON_CACHE", str(tmp_path / "cache"))
    assert load_compute(ckpt, "onnx").kind == "onnx"
    assert len(list((tmp_path / "cache").glob("policy-*.onnx"))) == 1
    assert load_compute(ckpt, str(onnx_path)).config.to_dict() == policy.config.to_dict()


def test_onnx_refusals(exported, tmp_path):
    _, ckpt, onnx_path = exported
    with pytest.raises(CheckpointError, match="no such ONNX file"):
        load_onnx(tmp_path / "absent.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not an ONNX model"):
        load_onnx(tmp_path / "junk.onnx")
    import onnx

    model = onnx.load(str(onnx_path))
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "bare.onnx"))
    with pytest.raises(CheckpointError, match="without a valid Photon policy description"):
        load_onnx(tmp_path / "bare.onnx")
