"""Camera intake for model nodes: camera messages in, model-size RGB frames out, drops counted.

Both model nodes (policy, world model) take frames of any size in any convertible encoding
(photon_policy.ros.images), raw or compressed, and resize them to the model's square input
here; a message that cannot become a frame is a counted drop with a reason, never an error
that reaches the node's callback.
"""
from __future__ import annotations

import statistics
from collections import Counter, deque
from typing import Any, Callable

import cv2
import numpy as np

from photon_policy.ros.images import decode_compressed, decode_image


def to_model_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 of any size -> (size, size, 3) uint8: area-averaged when shrinking,
    bilinear when enlarging."""
    if frame.shape[:2] == (size, size):
        return frame
    shrink = frame.shape[0] >= size and frame.shape[1] >= size
    return cv2.resize(np.ascontiguousarray(frame), (size, size),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class CameraIntake:
    """`frame(msg)`: sensor_msgs/Image or CompressedImage -> (size, size, 3) uint8 RGB, or None
    when the message was dropped (counted in `drops` by reason and reported through `warn`,
    which a node throttles)."""

    def __init__(self, size: int, warn: Callable[[str], None] = lambda text: None) -> None:
        self.size = size
        self.warn = warn
        self.drops: Counter[str] = Counter()
        self.frames = 0
        self.lost = 0
        """Frames that never arrived, judged from gaps in the stamps (a transport that cannot carry
        a frame, e.g. Fast DDS best effort with frames larger than its buffers, drops it silently)."""
        self._last_stamp: float | None = None
        self._intervals: deque[float] = deque(maxlen=50)

    def frame(self, msg: Any) -> np.ndarray | None:
        compressed = hasattr(msg, "format") and not hasattr(msg, "encoding")
        try:
            frame = decode_compressed(msg) if compressed else decode_image(msg)
        except ValueError as exc:
            return self.drop("malformed_image", str(exc))
        if frame is None:
            return self.drop(f"encoding_{msg.encoding or 'empty'}", f"cannot convert encoding '{msg.encoding}'")
        self.frames += 1
        self._count_lost(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)
        return to_model_frame(frame, self.size)

    def _count_lost(self, stamp: float) -> None:
        last, self._last_stamp = self._last_stamp, stamp
        if last is None or stamp <= last:
            return
        interval = stamp - last
        if len(self._intervals) >= 10:
            typical = statistics.median(self._intervals)  # np.median: 0.1 ms a frame on 50 values
            if interval > 1.5 * typical:
                self.lost += round(interval / typical) - 1
                return  # a gap is not the camera's rate
        self._intervals.append(interval)

    def drop(self, reason: str, detail: str) -> None:
        self.drops[reason] += 1
        self.warn(f"dropped camera frame ({reason}): {detail}")
        return None

    @property
    def dropped(self) -> int:
        return sum(self.drops.values())


IMAGE_TRANSPORTS = {"raw": "camera/image_raw", "compressed": "camera/image_raw/compressed"}
IMAGE_TRANSPORT_HELP = ("raw: sensor_msgs/Image on camera/image_raw; compressed: sensor_msgs/CompressedImage "
                        "on camera/image_raw/compressed (image_transport's names)")


def check_transport(transport: str) -> None:
    if transport not in IMAGE_TRANSPORTS:
        raise ValueError(f"image_transport '{transport}' is not one of {', '.join(IMAGE_TRANSPORTS)}")


def subscribe_camera(node: Any, transport: str, callback: Callable[[Any], None]) -> Any:
    """The node's camera subscription (sensor-data QoS) for `transport`; CameraIntake takes either type."""
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CompressedImage, Image

    check_transport(transport)
    msg_type = CompressedImage if transport == "compressed" else Image
    return node.create_subscription(msg_type, IMAGE_TRANSPORTS[transport], callback, qos_profile_sensor_data)
