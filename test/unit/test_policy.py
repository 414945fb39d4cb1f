"""Driving policy cores: the network and its per-frame path, samples, checkpoints and their refusals,
the safety layer under adversarial outputs, the streaming runtime against the training samples,
TorchScript export parity, behaviour cloning that resumes, and a 2-process DDP run on gloo."""
import math

import numpy as np
import pytest
import torch

from photon_policy.policy.checkpoint import CheckpointError, load_policy, load_policy_checkpoint, save_policy
from photon_policy.policy.dataset import PolicySamples
from photon_policy.policy.export import EagerCompute, export_torchscript, load_compute, load_torchscript, trace
from photon_policy.policy.model import DrivingPolicy, PolicyConfig
from photon_policy.policy.runtime import PolicyRuntime
from photon_policy.policy.safety import SafetyConfig, SafetyLayer
from photon_policy.policy.train import PolicyTrainConfig, train
from test_world_model import SIZE, one_thread, scrolling_episode, tiny_config  # noqa: F401
from photon_policy.learning.checkpoint import weights_sha256
from world_model_node.checkpoint import save_checkpoint
from world_model_node.dataset import window_actions
from world_model_node.model import WorldModel


def wm_config(**kw):
    return tiny_config(context_steps=3, **kw)


def tiny_policy(seed: int = 0, **kw) -> DrivingPolicy:
    torch.manual_seed(seed)
    return DrivingPolicy(PolicyConfig(world_model=wm_config().to_dict(), head_width=16, **kw)).eval()


def driving_episode(name: str, frames: int = 120, seed: int = 0):
    """scrolling_episode with IMU and odometry, and labels that differ from the applied commands."""
    ep = scrolling_episode(name, frames, seed)
    rng = np.random.default_rng(seed + 100)
    ep.imu[:] = rng.normal(0, 30, ep.imu.shape)
    ep.odom[:, 0] = np.abs(rng.normal(40, 10, frames))
    ep.teleop = (ep.commands + rng.normal(0, [0.05, 2.0], ep.commands.shape)).astype(np.float32)
    return ep


def test_outputs_in_range_and_frame_step_equals_forward():
    p = tiny_policy()
    frames = torch.randint(0, 256, (4, 3, 3, SIZE, SIZE), dtype=torch.uint8)
    actions = torch.rand(4, 3, 2) * torch.tensor([0.4, 50.0])
    extras = torch.randn(4, 5) * 10
    with torch.no_grad():
        out = p(frames, actions, extras)
        z = p.world_model.encode(frames)
        cmd, latent = p.frame_step(frames[:, 2], z[:, :2], actions, extras)
    assert out.shape == (4, 2) and (out[:, 0].abs() <= 0.4).all() and ((out[:, 1] >= 0) & (out[:, 1] <= 100)).all()
    torch.testing.assert_close(cmd, out)  # cached latents give exactly the full computation
    torch.testing.assert_close(latent, z[:, 2])
    assert p.world_model.config.policy_feature_dim == 32


def test_from_world_model_reuses_its_weights(tmp_path):
    torch.manual_seed(1)
    wm = WorldModel(wm_config())
    path = save_checkpoint(tmp_path / "wm.pt", wm)
    p = DrivingPolicy.from_world_model(path, head_width=16)
    for k, v in wm.state_dict().items():
        assert torch.equal(p.world_model.state_dict()[k], v), k
    scratch = tiny_policy(seed=5)
    assert not torch.equal(scratch.world_model.encoder[0].weight, wm.encoder[0].weight)
    assert p.config.world_model == wm.config.to_dict() == scratch.config.world_model


def test_checkpoint_round_trip_and_refusals(tmp_path):
    p = tiny_policy()
    good = save_policy(tmp_path / "p.pt", p, step=3, metrics={"val_loss": 0.1})
    p2, ckpt = load_policy(good, expected_config=p.config, image_size=SIZE)
    assert ckpt["step"] == 3 and ckpt["model_config_obj"].head_width == 16
    x = (torch.randint(0, 256, (1, 3, 3, SIZE, SIZE), dtype=torch.uint8), torch.rand(1, 3, 2), torch.randn(1, 5))
    with torch.no_grad():
        assert torch.equal(p(*x), p2(*x))
    data = good.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_policy(tmp_path / "trunc.pt")
    wm = save_checkpoint(tmp_path / "wm.pt", WorldModel(wm_config()))
    with pytest.raises(CheckpointError, match="not a Photon policy checkpoint.*world-model checkpoint"):
        load_policy(wm)
    with pytest.raises(CheckpointError, match="is for 32x32 images, expected 96x96"):
        load_policy(good, image_size=96)
    with pytest.raises(CheckpointError, match="does not match.*head_width: checkpoint 16 != expected 32"):
        load_policy(good, expected_config=PolicyConfig(world_model=wm_config().to_dict(), head_width=32))
    with pytest.raises(CheckpointError, match="does not match.*hidden: checkpoint 16 != expected 24"):
        load_policy(good, expected_config=PolicyConfig(world_model=wm_config(hidden=24).to_dict(), head_width=16))
    ckpt = torch.load(good, weights_only=True)
    ckpt["model"]["head.0.weight"] = torch.zeros(3, 3)
    torch.save(ckpt, tmp_path / "tampered.pt")
    with pytest.raises(CheckpointError, match="content hash does not match"):
        load_policy(tmp_path / "tampered.pt")
    ckpt["weights_sha256"] = weights_sha256(ckpt["model"])  # consistently re-hashed: the shapes still misfit
    torch.save(ckpt, tmp_path / "misfit.pt")
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_policy(tmp_path / "misfit.pt")
    ckpt["model_config"]["head_width"] = -1
    torch.save(ckpt, tmp_path / "badconfig.pt")
    with pytest.raises(CheckpointError, match="config is not valid here"):
        load_policy_checkpoint(tmp_path / "badconfig.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_policy(tmp_path / "missing.pt")


def test_samples_cover_every_phase_with_the_training_contract():
    seg = np.r_[np.zeros(100), np.ones(60)]
    ep = driving_episode("seg", frames=160)
    ep.segments = seg.astype(np.int64)
    ds = PolicySamples([ep], context_steps=3, model_dt=0.1)
    ks = [ds.frame_index(i) for i in range(len(ds))]
    # Frame k needs commands from k-15 on in its segment and k-15 >= 1 s (50 frames) in.
    assert ks == [*range(65, 100), *range(115, 160)]
    item = ds[ks.index(80)]
    np.testing.assert_array_equal(item["frames"].numpy(), ep.frames[[70, 75, 80]].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(item["actions"].numpy(), window_actions(ep.commands, 70, 3, 5))
    np.testing.assert_allclose(item["extras"].numpy(), [*ep.imu[79], ep.odom[79, 0], ep.commands[79, 0]])
    np.testing.assert_array_equal(item["label"].numpy(), ep.teleop[80])
    assert item["frames"].dtype == torch.uint8


ADVERSARIAL = [math.nan, math.inf, -math.inf, 1e9, -1e9, 1e308, -0.0, 0.5, -0.5, 250.0, -3.0, None, "x"]


def test_safety_output_is_always_finite_in_limits_and_rates():
    c = SafetyConfig(max_steering_angle=0.4, max_speed=100.0, max_steering_rate=4.0, max_accel=150.0,
                     max_decel=300.0)
    layer = SafetyLayer(c)
    rng = np.random.default_rng(0)
    prev, t = (0.0, 0.0), 0.0
    for i in range(3000):
        if i % 3 == 0:  # alternating extremes
            s, v = (1e9, 1e9) if i % 2 else (-1e9, -1e9)
        else:
            s, v = ADVERSARIAL[rng.integers(len(ADVERSARIAL))], ADVERSARIAL[rng.integers(len(ADVERSARIAL))]
        t += 0.02
        steering, speed, hits = layer.filter(s, v, t)
        assert math.isfinite(steering) and math.isfinite(speed)
        assert abs(steering) <= c.max_steering_angle and 0.0 <= speed <= c.max_speed
        assert float(np.float32(steering)) == steering and float(np.float32(speed)) == speed  # as sent
        assert abs(steering - prev[0]) <= c.max_steering_rate * 0.02 + 1e-6
        assert speed - prev[1] <= c.max_accel * 0.02 + 1e-5
        finite = all(isinstance(x, float) and math.isfinite(x) for x in (s, v))
        if not finite:  # a stop, steering held
            assert speed == 0.0 and steering == prev[0] and any(h.endswith("nonfinite") for h in hits)
        else:
            assert speed - prev[1] >= -c.max_decel * 0.02 - 1e-5
        prev = (steering, speed)
    assert layer.stops > 0 and layer.hits["steering_limit"] > 0 and layer.hits["accel_limit"] > 0


def test_safety_stamps_that_do_not_advance_allow_no_change():
    layer = SafetyLayer()
    assert layer.filter(0.3, 50.0, 1.0)[:2] == (0.0, 0.0)  # before the first command: standing
    for stamp in (1.0, 0.5, math.nan, math.inf):
        assert layer.filter(0.3, 50.0, stamp)[:2] == (0.0, 0.0)
    s, v, hits = layer.filter(0.3, 50.0, 1.0e6)  # a long gap counts as MAX_DT (0.1 s): 150 m/s^2 * 0.1 s
    assert (s, v, hits) == (pytest.approx(0.3), pytest.approx(15.0), ["accel_limit"])
    assert layer.stop(1e6 + 0.02) == (s, 0.0)
    with pytest.raises(ValueError, match="max_speed=nan must be finite"):
        SafetyConfig(max_speed=math.nan)


def test_runtime_matches_the_training_samples():
    """What the node computes frame by frame equals the policy on the dataset's sample."""
    p = tiny_policy(seed=3)
    ep = driving_episode("live", frames=100, seed=2)
    ep.teleop = ep.commands  # live, the applied command of frame k is the answer to frame k
    rt = PolicyRuntime(EagerCompute(p), 3, 0.1, (4, 8, 8))
    ds = PolicySamples([ep], 3, 0.1, skip_s=0.0)
    results = {}
    for k in range(len(ep)):
        t = float(ep.stamps[k])
        rt.add_imu(t, *ep.imu[k])
        result = rt.push(ep.frames[k], t)
        rt.add_odom(t, ep.odom[k, 0])   # the simulator publishes odometry after the image
        rt.add_applied(t, *ep.commands[k])
        results[k] = result
    assert results[0].status == "no_context" and results[0].missing == ("imu", "odom")
    # Ready once frames lie 0.1 and 0.2 s back (within a quarter step: frame 0 stands in at k = 9).
    assert results[8].status == "no_context" and results[9].status == "ok" and results[10].missing == ()
    for i in range(0, len(ds), 7):
        k = ds.frame_index(i)
        item = ds[i]
        with torch.no_grad():
            want = p(item["frames"][None], item["actions"][None], item["extras"][None])[0].numpy()
        np.testing.assert_allclose(results[k].command, want, rtol=1e-5, atol=1e-5)
    assert rt.push(ep.frames[-1], float(ep.stamps[-1])).status == "repeat"
    assert rt.push(ep.frames[-1], float(ep.stamps[-2])).status == "out_of_order"
    assert rt.push(ep.frames[0], 0.0).status == "no_context" and rt.restarts == 1  # a new stream


def test_runtime_fallbacks_for_missing_inputs():
    p = tiny_policy()
    captured = []

    def compute(frame, past, actions, extras):
        captured.append(extras[0].numpy().copy())
        return p.frame_step(frame, past, actions, extras)

    rt = PolicyRuntime(compute, 3, 0.1, (4, 8, 8), input_timeout_s=0.5)
    frame = np.zeros((SIZE, SIZE, 3), np.uint8)
    rt.add_applied(0.0, 0.1, 33.0)
    rt.add_odom(0.0, 20.0)
    rt.add_imu(0.0, 1.0, 2.0, 0.3)
    assert rt.push(frame, 0.02).missing == ()
    np.testing.assert_allclose(captured[-1], [1.0, 2.0, 0.3, 20.0, 0.1], rtol=1e-6)
    result = rt.push(frame, 0.6)  # both 0.6 s old: IMU -> zeros, speed -> the applied command's
    assert result.missing == ("imu", "odom")
    np.testing.assert_allclose(captured[-1], [0.0, 0.0, 0.0, 33.0, 0.1], rtol=1e-6)


def test_export_parity_and_refusals(tmp_path):
    p = tiny_policy(seed=4)
    ckpt = save_policy(tmp_path / "p.pt", p)
    out = export_torchscript(ckpt, tmp_path / "p.ts.pt")
    exported = load_torchscript(out)
    eager = EagerCompute(p)
    assert exported.config.to_dict() == p.config.to_dict()
    torch.manual_seed(0)
    for _ in range(5):
        x = (torch.randint(0, 256, (1, 3, SIZE, SIZE), dtype=torch.uint8), torch.randn(1, 2, 4, 8, 8),
             torch.rand(1, 3, 2) * torch.tensor([0.8, 100.0]) - torch.tensor([0.4, 0.0]), torch.randn(1, 5) * 20)
        (c1, z1), (c2, z2) = eager(*x), exported(*x)
        torch.testing.assert_close(c2, c1, rtol=0, atol=1e-5)
        torch.testing.assert_close(z2, z1, rtol=0, atol=1e-5)
    assert load_compute(ckpt, "torchscript").kind == "torchscript" and load_compute(ckpt, str(out)).kind == "torchscript"
    with pytest.raises(CheckpointError, match="not a TorchScript file"):
        load_torchscript(ckpt)
    trace(p).save(str(tmp_path / "bare.pt"))
    with pytest.raises(CheckpointError, match="without a valid Photon policy description"):
        load_torchscript(tmp_path / "bare.pt")


def _bc_config(out, wm_path, **kw):
    args = dict(out_dir=str(out), world_model=str(wm_path), model={"head_width": 16}, batch_size=8, max_steps=6,
                val_interval=3, val_samples=16, warmup_steps=1, threads=1, progress=False, val_fraction=0.3,
                lr=3e-3, freeze_world_model_steps=2)
    return PolicyTrainConfig(**(args | kw))


@pytest.fixture(scope="module")
def bc_data(tmp_path_factory):
    torch.manual_seed(0)
    wm_path = save_checkpoint(tmp_path_factory.mktemp("wm") / "wm.pt", WorldModel(wm_config()))
    return wm_path, [driving_episode(f"ep{i}", frames=90, seed=i) for i in range(4)]


def test_behaviour_cloning_names_its_world_model_and_refuses_another_network(tmp_path, bc_data):
    wm_path, eps = bc_data
    train(_bc_config(tmp_path / "run", wm_path), eps)
    policy, ckpt = load_policy(tmp_path / "run" / "best.pt")
    assert ckpt["format"] == "photon-policy" and ckpt["step"] > 0
    assert ckpt["train_config"]["world_model"] == str(wm_path) and math.isfinite(ckpt["metrics"]["val_steering_mae"])
    assert ckpt["extra"]["world_model_sha256"] == weights_sha256(torch.load(wm_path, weights_only=True)["model"])
    lines = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert lines[0].startswith("step,") and "val_steering_mae" in lines[0]
    # The world model was frozen for the first 2 steps, then fine-tuned.
    wm = torch.load(wm_path, weights_only=True)["model"]
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model"]
    assert not torch.equal(last["world_model.encoder.0.weight"], wm["encoder.0.weight"])
    # A resume with another network is refused, naming the difference.
    with pytest.raises(CheckpointError, match="head_width: checkpoint 16 != expected 32"):
        train(_bc_config(tmp_path / "run", wm_path, model={"head_width": 32}, max_steps=8), eps)


def test_frozen_world_model_steps_leave_it_untouched(tmp_path, bc_data):
    wm_path, eps = bc_data
    train(_bc_config(tmp_path / "frozen", wm_path, max_steps=2, val_interval=2), eps)
    a = torch.load(tmp_path / "frozen" / "last.pt", weights_only=True)["model"]
    wm = torch.load(wm_path, weights_only=True)["model"]
    assert all(torch.equal(a[f"world_model.{k}"], v) for k, v in wm.items())
