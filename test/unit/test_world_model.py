"""World model core: shapes, checkpoints and their refusals, overfitting, windows, the
steering counterfactual measure, resume, and a 2-process DDP run on gloo."""
import argparse
import math

import numpy as np
import pytest
import torch

from photon_policy.bags.episode_arrays import EpisodeArrays
from world_model_node.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from world_model_node.dataset import WindowDataset, split_episodes, window_actions, window_motion, window_starts
from world_model_node.evaluate import counterfactual_check, ssim, steering_rotation
from world_model_node.model import WorldModel, WorldModelConfig
from world_model_node.train import TrainConfig, train

SIZE = 32


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread is faster, and immune to a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(**kw) -> WorldModelConfig:
    args = dict(image_size=SIZE, enc_channels=(8, 8), dec_channels=(8, 8), latent_channels=4,
                embed_dim=16, hidden=16, refine_channels=8, action_embed=8, context_steps=2,
                horizon_steps=2)
    return WorldModelConfig(**(args | kw))


def scrolling_episode(name: str, frames: int = 120, seed: int = 0, segments=None) -> EpisodeArrays:
    """A camera over a random texture: speed scrolls it down, steering sideways."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(40, 216, (8, 8, 3)).repeat(16, 0).repeat(16, 1).astype(np.uint8)
    commands = np.stack([rng.uniform(-0.4, 0.4, frames), rng.uniform(10, 30, frames)], 1).astype(np.float32)
    y = np.cumsum(commands[:, 1] * 0.02 * 5).astype(int)
    x = np.cumsum(commands[:, 0] * 10).astype(int)
    imgs = np.stack([np.roll(texture, (y[t], x[t]), (0, 1))[:SIZE, :SIZE] for t in range(frames)])
    zeros = np.zeros((frames, 3), np.float32)
    seg = np.zeros(frames, np.int64) if segments is None else np.asarray(segments, np.int64)
    return EpisodeArrays(name=name, stamps=np.arange(frames) * 0.02, frames=imgs, commands=commands,
                         teleop=commands, imu=zeros, odom=zeros, segments=seg)


def test_shapes_and_policy_features():
    torch.manual_seed(0)
    c = tiny_config()
    m = WorldModel(c).eval()
    ctx = torch.randint(0, 256, (3, 2, 3, SIZE, SIZE), dtype=torch.uint8)
    ca, fa = torch.randn(3, 2, 2), torch.randn(3, 4, 2)
    with torch.no_grad():
        assert m.encode(ctx).shape == (3, 2, 4, 8, 8)
        state = m.observe(ctx, ca)
        assert state.feat.shape == (3, 4, 8, 8) and state.h.shape == (3, 16)
        assert m.policy_features(state).shape == (3, c.policy_feature_dim) == (3, 32)
        imagined = m.imagine(state, fa)
        assert imagined.feat.shape == (3, 4, 4, 8, 8)
        assert m.policy_features(imagined).shape == (3, 4, 32)
        pred = m.video_pred(ctx, ca, fa)
        assert pred.shape == (3, 4, 3, SIZE, SIZE) and 0 <= pred.min() and pred.max() <= 1
        # Feeding frames one at a time with the carried state equals observing them together.
        s1 = m.observe(ctx[:, 1:], ca[:, 1:], m.observe(ctx[:, :1], ca[:, :1]))
        torch.testing.assert_close(s1.h, state.h)
        assert WorldModelConfig().horizon_steps * WorldModelConfig().model_dt >= 0.5


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    m = WorldModel(tiny_config()).eval()
    opt = torch.optim.AdamW(m.parameters())
    path = save_checkpoint(tmp_path / "m.pt", m, opt, step=7, epoch=1, train_config={"seed": 0},
                           metrics={"val_loss": 0.5})
    m2, ckpt = load_model(path, expected_config=tiny_config())
    assert ckpt["step"] == 7 and ckpt["metrics"]["val_loss"] == 0.5
    ctx = torch.randint(0, 256, (2, 2, 3, SIZE, SIZE), dtype=torch.uint8)
    ca, fa = torch.randn(2, 2, 2), torch.randn(2, 2, 2)
    with torch.no_grad():
        assert torch.equal(m.video_pred(ctx, ca, fa), m2.video_pred(ctx, ca, fa))


def test_checkpoint_refusals(tmp_path):
    m = WorldModel(tiny_config())
    good = save_checkpoint(tmp_path / "good.pt", m)
    data = good.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "trunc.pt")
    (tmp_path / "noise.pt").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "noise.pt")
    torch.save({"state_dict": m.state_dict()}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a Photon world-model checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    torch.save(argparse.Namespace(a=1), tmp_path / "pickle.pt")
    with pytest.raises(CheckpointError, match="not a Photon world-model checkpoint.*weights-only"):
        load_checkpoint(tmp_path / "pickle.pt")
    ckpt = torch.load(good, weights_only=True)
    torch.save(ckpt | {"version": 99}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="version 99 is newer"):
        load_checkpoint(tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="is for 32x32 images, expected 96x96"):
        load_checkpoint(good, image_size=96)
    with pytest.raises(CheckpointError, match=r"does not match.*hidden: checkpoint 16 != expected 32"):
        load_checkpoint(good, expected_config=tiny_config(hidden=32))
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_tiny_model_overfits_a_few_windows():
    torch.manual_seed(0)
    c = tiny_config()
    ds = WindowDataset([scrolling_episode("a")], c.context_steps, c.horizon_steps, c.model_dt)
    batch = [ds[i] for i in range(0, 40, 10)]
    frames = torch.stack([b["frames"] for b in batch])
    actions = torch.stack([b["actions"] for b in batch])
    m = WorldModel(c)
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    losses = []
    for _ in range(80):
        loss, _ = m.compute_loss(frames, actions)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses[::10]


def test_windows_respect_segments_and_skip_first_second():
    seg = np.r_[np.zeros(100), np.ones(30), np.full(70, 2)]
    ep = scrolling_episode("seg", frames=200, segments=seg)
    ep.commands[:] = np.arange(200, dtype=np.float32)[:, None]
    ds = WindowDataset([ep], context_steps=2, horizon_steps=2, model_dt=0.1)
    assert len(ds) > 0
    for i in range(len(ds)):
        idx = ds.frame_indices(i)
        first_command = idx[0] - 5
        covered = np.arange(first_command, idx[-1] + 1)
        assert len(set(seg[covered])) == 1, idx
        assert ep.stamps[first_command] >= 1.0 - 1e-9
        assert np.all(np.diff(idx) == 5)
    starts = window_starts(ep, 4, 5)
    # Commands from start-5 to the last frame start+15 lie in one segment, the first at >= 1.0 s.
    assert starts.tolist() == [*range(55, 85), *range(105, 115), *range(135, 185)]
    # The action for each frame is the mean command over the stride before it.
    acts = window_actions(ep.commands, 60, 4, 5)
    np.testing.assert_allclose(acts[:, 0], [57, 62, 67, 72])
    assert ds[0]["frames"].dtype == torch.uint8 and ds[0]["frames"].shape == (4, 3, SIZE, SIZE)


def test_motion_targets_come_from_the_odometry_over_each_step_in_the_warps_convention():
    t = np.arange(40, dtype=np.float32)
    # vx ramps with the frame index; vy and the yaw rate are constant.
    odom = np.stack([t, np.full_like(t, 2.0), np.full_like(t, 0.5)], -1)
    motion = window_motion(odom, start=10, steps=3, stride=5, model_dt=0.1)
    # Frame 10 moved over frames 6..10 (mean vx 8), frame 15 over 11..15, frame 20 over 16..20.
    np.testing.assert_allclose(motion, [[0.05, 0.2, 0.8], [0.05, 0.2, 1.3], [0.05, 0.2, 1.8]], rtol=1e-6)
    model = WorldModel(tiny_config(view_width_m=20.0))
    target = model.motion_target(torch.tensor([[0.1, 1.0, 5.0]]))
    # Turning left and moving forward: the warp samples clockwise and from higher up.
    torch.testing.assert_close(target, torch.tensor([[-0.1, -0.1, -0.5]]))


def test_split_is_deterministic_by_name():
    eps = [scrolling_episode(f"bag_{i}", frames=10) for i in range(20)]
    tr, va = split_episodes(eps, 0.2)
    tr2, va2 = split_episodes(list(reversed(eps)), 0.2)
    assert {e.name for e in va} == {e.name for e in va2} and va
    assert not {e.name for e in tr} & {e.name for e in va} and len(tr) + len(va) == 20


def _road_scene(angle_deg: float) -> torch.Tensor:
    """96x96 green frame with a grey road running up from the car (48, 72), rotated
    clockwise on screen by angle_deg about the car."""
    img = torch.tensor([0.4, 0.8, 0.4])[:, None, None].repeat(1, 96, 96)
    ys, xs = torch.meshgrid(torch.arange(96.0), torch.arange(96.0), indexing="ij")
    a = math.radians(angle_deg)
    dx, dy = xs - 48, 72 - ys
    across = dx * math.cos(a) - dy * math.sin(a)   # distance from the rotated road's axis
    along = dx * math.sin(a) + dy * math.cos(a)
    road = (across.abs() < 7) & (along > -20)
    img[:, road] = 0.41
    img[:, 84:] = 0.0  # HUD
    return img


def test_counterfactual_measure_signs():
    straight, cw, ccw = _road_scene(0), _road_scene(15), _road_scene(-15)
    car = (48.0, 72.0)
    rot = steering_rotation(straight[None], cw[None], car)
    assert 10 < rot.item() < 20
    assert -20 < steering_rotation(straight[None], ccw[None], car).item() < -10
    ok = counterfactual_check(straight[None], cw[None], ccw[None], car)
    assert ok["pass"].item() and ok["determinate"].item()
    assert not counterfactual_check(straight[None], ccw[None], cw[None], car)["pass"].item()
    assert not counterfactual_check(straight[None], straight[None], straight[None], car)["pass"].item()
    grass = torch.tensor([0.4, 0.8, 0.4])[:, None, None].repeat(1, 96, 96)
    assert not counterfactual_check(grass[None], cw[None], ccw[None], car)["determinate"].item()
    assert ssim(straight, straight).item() == pytest.approx(1.0)


def _train_config(out, **kw):
    args = dict(out_dir=str(out), model=tiny_config(), batch_size=4, max_steps=4, val_interval=2,
                val_samples=8, warmup_steps=1, threads=1, progress=False, val_fraction=0.3)
    return TrainConfig(**(args | kw))


def _episodes():
    return [scrolling_episode(f"ep{i}", frames=100, seed=i) for i in range(4)]


def test_fine_tuning_starts_from_the_named_checkpoint(tmp_path):
    eps = _episodes()
    train(_train_config(tmp_path / "base"), eps)
    base = torch.load(tmp_path / "base" / "last.pt", weights_only=True)["model"]
    # A learning rate too small to move any weight: what the run ends with is what it started from.
    still = dict(lr=1e-12, weight_decay=0.0, max_steps=2, val_interval=2)
    train(_train_config(tmp_path / "tuned", init_from=str(tmp_path / "base" / "last.pt"), **still), eps)
    train(_train_config(tmp_path / "fresh", seed=1, **still), eps)
    tuned = torch.load(tmp_path / "tuned" / "last.pt", weights_only=True)
    fresh = torch.load(tmp_path / "fresh" / "last.pt", weights_only=True)["model"]
    assert tuned["step"] == 2 and tuned["train_config"]["init_from"].endswith("last.pt")
    for k in base:
        assert torch.allclose(tuned["model"][k].float(), base[k].float(), atol=1e-6), k
    assert any(not torch.allclose(fresh[k].float(), base[k].float()) for k in base)
    with pytest.raises(CheckpointError, match="does not match"):
        train(_train_config(tmp_path / "other", model=tiny_config(hidden=32),
                            init_from=str(tmp_path / "base" / "last.pt")), eps)


