"""World model end to end on real bags and real DDS: record -> train (tiny) -> evaluate -> serve."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from photon_msgs.msg import WorldModelState
from photon_policy.cli import main as photon
from photon_policy.ros.images import image_message
from photon_policy.ros.stamps import stamp_from_seconds

TINY = {"max_steps": 16, "batch_size": 4, "val_interval": 8, "val_samples": 8, "warmup_steps": 2,
        "progress": False,
        "model": {"enc_channels": [8, 16, 32], "dec_channels": [32, 16, 8], "latent_channels": 8,
                  "embed_dim": 32, "hidden": 32, "refine_channels": 16, "action_embed": 8}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two short expert episodes recorded over DDS, and a tiny world model trained on them."""
    root = tmp_path_factory.mktemp("wm")
    bags, run = root / "bags", root / "run"
    assert photon(["collect", "--seeds", "1000-1001", "--noise", "0.05", "--max-steps", "150",
                   "--out", str(bags), "--quiet"]) == 0
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    assert photon(["train", "world-model", "--data", str(bags), "--out", str(run), "--config", str(config),
                   "--device", "cpu"]) == 0
    return bags, run


def test_train_writes_resumable_self_describing_checkpoints(trained):
    from world_model_node.checkpoint import load_checkpoint
    _, run = trained
    for name in ("best.pt", "last.pt"):
        ckpt = load_checkpoint(run / name)
        assert ckpt["model_config_obj"].hidden == 32  # the config travels inside the file
    rows = (run / "log.csv").read_text().strip().splitlines()
    assert len(rows) >= 2 and "val" in rows[0]


def test_eval_reports_per_horizon_metrics_and_baselines(trained, tmp_path):
    bags, run = trained
    out = tmp_path / "wm_eval.json"
    assert photon(["eval", "world-model", "--ckpt", str(run), "--data", str(bags), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    horizons = report["horizons_s"]
    assert horizons[-1] >= 0.5 and len(horizons) == 5
    for metric in ("psnr", "ssim"):
        for baseline in ("model", "copy_last", "zero_action"):
            values = report[metric][baseline]
            assert len(values) == len(horizons) and all(np.isfinite(values))
    assert 0.0 <= report["counterfactual_pass_rate"] <= 1.0
    # The bags were recorded over DDS in lockstep: replayed in process, they reproduce frame for
    # frame, so the simulator's own branches are the counterfactual's ground truth.
    cf = report["counterfactual"]
    assert cf["ground_truth"] == "simulator", cf.get("ground_truth_note")
    assert 0 <= cf["passed"] <= cf["determinate"] <= cf["simulator"]["road_visible"] <= cf["contexts"]
    assert cf["simulator"]["mean_rotation_left_deg"] > 0 > cf["simulator"]["mean_rotation_right_deg"]
    for branch in ("straight", "left", "right"):
        assert all(np.isfinite(cf["branch_psnr"][branch]["model"]))
    for strip in ("prediction_strip.png", "counterfactual_strip.png"):
        assert (tmp_path / strip).stat().st_size > 1000


def test_node_serves_predictions_and_state(trained, nodes, probe):
    _, run = trained
    nodes.start("sim-world-model", "simulator", remap={"drive": "/drive"})
    nodes.start("sim-world-model", "world_model", checkpoint=str(run / "best.pt"), rate_hz=0.0)
    predictions = probe.subscribe(Image, "/world_model/prediction")
    states = probe.subscribe(WorldModelState, "/world_model/state")
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    probe.wait_for(lambda: len(predictions) >= 3 and len(states) >= 3, 60, "world-model predictions")
    strip = predictions[-1]
    assert (strip.height, strip.width, strip.encoding) == (3 * 96, 5 * 96, "rgb8")  # straight/left/right x 5 steps
    state = states[-1]
    assert state.latent_dim == len(state.latent) == 32 + 32 and state.horizon_steps == 5
    assert state.header.stamp == strip.header.stamp and state.inference_time > 0.0
    assert np.all(np.isfinite(state.latent))
    probe.wait_for(lambda: any(s.name.endswith("world model") for d in diags for s in d.status), 5, "diagnostics")


def serve(trained, nodes, probe, camera: str):
    """The trained world model's node on its own camera topic (every frame predicted from); the probe's
    camera publisher, prediction and diagnostics boxes."""
    _, run = trained
    nodes.start("sim-world-model", "world_model", checkpoint=str(run / "best.pt"), rate_hz=0.0,
                remap={"camera/image_raw": camera})
    pub = probe.publisher(Image, camera, qos_profile_sensor_data)
    predictions = probe.subscribe(Image, "/world_model/prediction")
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    probe.wait_for(lambda: pub.get_subscription_count() > 0, 20, "world model up")
    return pub, predictions, diags


def stream_until(pub, probe, frame, t: float, done, what: str, timeout: float = 30.0) -> float:
    """Camera frames (`frame()` -> (pixels, encoding)) stamped 0.02 s apart from `t`, in bursts of 20,
    until `done()`; returns the stamp after the last. One burst may not be enough: a node that falls
    behind (warming up, or on a loaded machine) keeps only the newest 5 frames (sensor-data QoS); when
    their stamps lie past its gap limit it starts over, and a burst can end before it predicts."""
    end = time.monotonic() + timeout
    while True:
        for _ in range(20):
            pixels, encoding = frame()
            msg = image_message(pixels, stamp_from_seconds(t), "camera_optical_frame")
            msg.encoding = encoding
            pub.publish(msg)
            t += 0.02
            probe.spin(0.02)
        try:
            probe.wait_for(done, 2.0, what)
            return t
        except AssertionError:
            if time.monotonic() > end:
                raise AssertionError(f"timed out after {timeout} s of camera frames waiting for {what}") from None


def test_node_converts_or_drops_and_counts_bad_frames(trained, nodes, probe):
    pub, predictions, diags = serve(trained, nodes, probe, "/test_camera")
    rng = np.random.default_rng(0)
    # 64x64 bgr8 frames at 50 Hz: converted (resampled), then predicted from
    t = stream_until(pub, probe, lambda: (rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), "bgr8"), 1.0,
                     lambda: predictions, "predictions from converted frames")
    bad = image_message(np.zeros((8, 8, 3), dtype=np.uint8), stamp_from_seconds(t), "camera_optical_frame")
    bad.encoding = "yuv422"
    pub.publish(bad)

    def latest() -> dict[str, str]:
        for d in reversed(diags):
            for s in d.status:
                if s.name.endswith("world model"):
                    return {kv.key: kv.value for kv in s.values}
        return {}
    probe.wait_for(lambda: latest().get("dropped_encoding_yuv422") == "1", 10,
                   lambda: f"the yuv422 frame counted as dropped; the node's latest diagnostics: {latest()}")


def test_node_refuses_a_bad_checkpoint(tmp_path, nodes):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint at all")
    proc = nodes.start("sim-world-model", "world_model", checkpoint=str(corrupt))
    assert proc.wait(timeout=30) == 2
    assert "checkpoint refused" in nodes.log("world_model") and str(corrupt) in nodes.log("world_model")


def test_node_recovers_from_clock_jumps(trained, nodes, probe):
    """Issue 14, finding 2: one frame stamped an hour ahead, then the clock set back an hour: the node
    resets its context (counted) and predicts again, instead of dropping every later frame."""
    pub, predictions, diags = serve(trained, nodes, probe, "/jump_camera")
    rng = np.random.default_rng(1)

    def frame():
        return rng.integers(0, 255, (96, 96, 3), dtype=np.uint8), "rgb8"

    t = stream_until(pub, probe, frame, 5000.0, lambda: predictions, "predictions before the jumps")
    for k in range(3):                         # frames an hour ahead
        pub.publish(image_message(frame()[0], stamp_from_seconds(t + 3600.0 + 0.02 * k), "camera_optical_frame"))
        probe.spin(0.02)
    for t0 in (t + 0.1, t + 0.1 - 3600.0):     # back to the stream, then the clock set back an hour
        seen = len(predictions)
        stream_until(pub, probe, frame, t0, lambda: len(predictions) > seen, f"predictions after the jump to {t0}")

    def jumps() -> int:
        values = [{kv.key: kv.value for kv in s.values} for d in diags for s in d.status]
        return max((int(v["clock_jumps"]) for v in values if "clock_jumps" in v), default=0)
    # Back from the hour ahead, and back an hour (best effort may lose the frames ahead: then only one).
    probe.wait_for(lambda: jumps() >= 1, 5, "clock jumps counted")
