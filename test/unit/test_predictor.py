"""The world-model node's streaming core: model-step cadence, action averaging, gap resets, strips."""
import numpy as np
import pytest
import torch

from world_model_node.model import WorldModel, WorldModelConfig
from photon_policy.ros.camera import to_model_frame
from world_model_node.predictor import StreamingPredictor, candidates, strip

TINY = WorldModelConfig(enc_channels=(8, 16, 32), dec_channels=(32, 16, 8), latent_channels=8, embed_dim=16,
                        hidden=16, refine_channels=8, action_embed=8)


@pytest.fixture
def predictor():
    torch.manual_seed(0)
    return StreamingPredictor(WorldModel(TINY))


def _frame(k: int) -> np.ndarray:
    return np.full((96, 96, 3), k % 256, dtype=np.uint8)


def test_observes_once_per_model_step_and_becomes_ready(predictor):
    folded = [predictor.push(_frame(k), 1.0 + 0.02 * k, np.array([0.1, 20.0])) for k in range(11)]
    assert folded == [True, False, False, False, False, True, False, False, False, False, True]
    assert predictor.ready and predictor.observed == 3
    rows = np.array([[[c.steering_angle, 20.0]] * TINY.horizon_steps for c in candidates(0.4)], dtype=np.float32)
    out = predictor.predict(rows)
    assert out.shape == (3, TINY.horizon_steps, 96, 96, 3) and out.dtype == np.uint8
    assert strip(out).shape == (3 * 96, TINY.horizon_steps * 96, 3)
    assert predictor.features().shape == (TINY.policy_feature_dim,)


def test_gap_in_camera_stream_resets_context(predictor):
    for k in range(11):
        predictor.push(_frame(k), 1.0 + 0.02 * k, np.zeros(2))
    assert predictor.ready
    predictor.push(_frame(0), 1.0 + 0.02 * 10 + 1.0, np.zeros(2))  # a 1 s hole
    assert predictor.resets == 1 and predictor.observed == 1 and not predictor.ready
    with pytest.raises(RuntimeError, match="observed"):
        predictor.predict(np.zeros((1, TINY.horizon_steps, 2), dtype=np.float32))


def test_out_of_order_frames_are_counted_not_used(predictor):
    predictor.push(_frame(0), 2.0, np.zeros(2))
    assert not predictor.push(_frame(1), 1.9, np.zeros(2))
    assert predictor.out_of_order == 1 and predictor.observed == 1


def test_frames_of_other_sizes_are_resampled():
    frame = np.zeros((64, 80, 3), dtype=np.uint8)
    frame[:, 40:] = 200
    out = to_model_frame(frame, 96)
    assert out.shape == (96, 96, 3) and out.dtype == np.uint8
    assert out[:, :40].mean() < 10 and out[:, 56:].mean() > 190
