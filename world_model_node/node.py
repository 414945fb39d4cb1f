"""world_model_node: imagines the next 0.5 s of camera frames, for rviz and for the policy.

Subscribes:
  camera/image_raw        sensor_msgs/Image (rgb8/bgr8/mono8; other sizes are resampled)  sensor-data QoS
                          (image_transport: compressed: CompressedImage on camera/image_raw/compressed)
  drive                   ackermann_msgs/AckermannDriveStamped: the command applied to the car
Publishes:
  world_model/prediction  sensor_msgs/Image rgb8 strip: a column per horizon step (0.1 s apart),
                          a row per candidate (straight, full left, full right) or one row (held command)
  world_model/state       photon_msgs/WorldModelState: the policy feature vector, stamp of the newest frame
  /diagnostics            inference time p50/p99, dropped frames by reason, context resets
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
from ackermann_msgs.msg import AckermannDriveStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image

from photon_msgs.msg import WorldModelState
from photon_policy.paths import shipped_model
from photon_policy.ros.camera import IMAGE_TRANSPORT_HELP, CameraIntake, check_transport, subscribe_camera
from photon_policy.ros.diagnostics import Diagnostics
from photon_policy.ros.images import image_message
from photon_policy.ros.node_runtime import ConfigError, declare_config, describe, run_node
from photon_policy.ros.stamps import seconds_from_stamp
from world_model_node.checkpoint import CheckpointError, load_model
from world_model_node.interface import StampedValues
from world_model_node.predictor import StreamingPredictor, candidates, strip


SHIPPED = "world_model.pt"


@dataclass
class WorldModelNodeParams:
    checkpoint: str = describe("", "world-model checkpoint; empty = the one shipped with the package")
    device: str = describe("cpu", "torch device: cpu, cuda, cuda:N")
    threads: int = describe(2, "torch CPU threads")
    rate_hz: float = describe(10.0, "predictions per second of camera time; 0 = on every camera frame")
    show_candidates: bool = describe(True, "one row per candidate future (straight/left/right), else the held command")
    max_steering_angle: float = describe(0.4, "rad, the steering of the left/right candidates")
    image_transport: str = describe("raw", IMAGE_TRANSPORT_HELP)

    def __post_init__(self) -> None:
        check_transport(self.image_transport)
        if self.rate_hz < 0.0:
            raise ValueError(f"rate_hz={self.rate_hz} must be >= 0")
        if self.threads < 1:
            raise ValueError(f"threads={self.threads} must be >= 1")
        if not self.device.startswith(("cpu", "cuda")):
            raise ValueError(f"device '{self.device}' is not cpu or cuda[:N]")


PARAMETERS = ((WorldModelNodeParams, ""),)
"""Every parameter the node declares: (config dataclass, name prefix)."""


class WorldModelNode(Node):
    def __init__(self) -> None:
        super().__init__("world_model")
        self.params = p = declare_config(self, WorldModelNodeParams)
        torch.set_num_threads(p.threads)
        try:
            path = p.checkpoint or str(shipped_model(SHIPPED, "world model"))
            model, _ = load_model(path, map_location=p.device)
        except (CheckpointError, FileNotFoundError) as exc:
            raise ConfigError(f"checkpoint refused: {exc}") from exc
        self.predictor = StreamingPredictor(model.to(p.device))
        self.size = model.config.image_size
        self.horizon = model.config.horizon_steps
        self.camera = CameraIntake(self.size, lambda text: self.get_logger().warning(text, throttle_duration_sec=2.0))
        self.nonfinite_commands = 0
        self.latencies: deque[float] = deque(maxlen=500)
        self.predictions = 0
        self._command = np.zeros(2, dtype=np.float32)
        self._applied = StampedValues()
        self._last_prediction_stamp: float | None = None

        self.prediction_pub = self.create_publisher(Image, "world_model/prediction", QoSProfile(depth=2))
        self.state_pub = self.create_publisher(WorldModelState, "world_model/state", QoSProfile(depth=10))
        self.diagnostics = Diagnostics(self, "world model", self._diagnostic_report, hardware_id=p.device)
        subscribe_camera(self, p.image_transport, self._on_image)
        self.create_subscription(AckermannDriveStamped, "drive", self._on_drive, QoSProfile(depth=10))
        self.get_logger().info(f"world model {path}: {self.horizon} steps of {model.config.model_dt} s, "
                               f"{model.config.image_size} px, device {p.device}")

    def _on_drive(self, msg: AckermannDriveStamped) -> None:
        command = np.array([msg.drive.steering_angle, msg.drive.speed], dtype=np.float32)
        if np.all(np.isfinite(command)):
            self._command = command
            self._applied.add(seconds_from_stamp(msg.header.stamp), command)
        else:
            self.nonfinite_commands += 1

    def _on_image(self, msg: Image) -> None:
        frame = self.camera.frame(msg)
        if frame is None:
            return
        stamp = seconds_from_stamp(msg.header.stamp)
        started = time.perf_counter()
        resets = self.predictor.resets
        # The command applied since the previous frame: the newest stamped before this one.
        applied = self._applied.before(stamp)
        jumps = self.predictor.clock_jumps
        self.predictor.push(frame, stamp, applied if applied is not None else np.zeros(2, np.float32))
        if self.predictor.clock_jumps != jumps:
            self._applied.clear()
            self.get_logger().warning(f"camera stamps jumped back to {stamp:.3f} s: context reset",
                                      throttle_duration_sec=2.0)
        elif self.predictor.resets != resets:
            self.get_logger().warning("gap in the camera stream: context reset", throttle_duration_sec=2.0)
        if not self.predictor.ready or not self._prediction_due(stamp):
            return
        rows = self._future_actions()
        predicted = self.predictor.predict(rows)
        features = self.predictor.features()
        elapsed = time.perf_counter() - started
        self.latencies.append(elapsed)
        self.predictions += 1
        self._last_prediction_stamp = stamp
        self.prediction_pub.publish(image_message(strip(predicted), msg.header.stamp, msg.header.frame_id))
        state = WorldModelState()
        state.header = msg.header
        state.latent = features.astype(np.float32).tolist()
        state.latent_dim = len(features)
        state.horizon_steps = self.horizon
        state.step_dt = float(self.predictor.config.model_dt)
        state.inference_time = float(elapsed)
        self.state_pub.publish(state)

    def _prediction_due(self, stamp: float) -> bool:
        last = self._last_prediction_stamp
        return self.params.rate_hz == 0.0 or last is None or stamp - last >= 0.999 / self.params.rate_hz

    def _future_actions(self) -> np.ndarray:
        speed = float(self._command[1])
        if not self.params.show_candidates:
            return np.tile(self._command, (1, self.horizon, 1))
        return np.array([[[c.steering_angle, speed]] * self.horizon
                         for c in candidates(self.params.max_steering_angle)], dtype=np.float32)

    def _diagnostic_report(self) -> tuple[dict, list[str]]:
        lat = np.array(self.latencies) * 1e3 if self.latencies else np.zeros(1)
        drops = {**self.camera.drops, "out_of_order": self.predictor.out_of_order}
        dropped = sum(drops.values())
        values = {"predictions": self.predictions, "inference_ms_p50": f"{np.percentile(lat, 50):.1f}",
                  "inference_ms_p99": f"{np.percentile(lat, 99):.1f}", "dropped_frames": dropped,
                  "frames_lost_in_transport": self.camera.lost,
                  "context_resets": self.predictor.resets, "clock_jumps": self.predictor.clock_jumps, "nonfinite_commands": self.nonfinite_commands,
                  **{f"dropped_{k}": v for k, v in drops.items()}}
        problems = [text for text, bad in ((f"{dropped} frames dropped", dropped),
                                           (f"{self.nonfinite_commands} non-finite commands",
                                            self.nonfinite_commands)) if bad]
        return values, problems

    def publish_safe_state(self) -> None:
        """The world model commands nothing; its last word is its final diagnostics."""
        self.diagnostics.publish()


def main(args: list[str] | None = None) -> int:
    return run_node(WorldModelNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
