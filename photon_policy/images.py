"""sensor_msgs/Image payloads to RGB arrays: shared by the bag reader and the camera-fed nodes."""
from __future__ import annotations

from typing import Any

import numpy as np

CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}
"""Encodings we convert, with their channel counts; anything else is dropped and counted by the caller."""


def decode_image(msg: Any) -> np.ndarray | None:
    """sensor_msgs/Image -> (H, W, 3) uint8 RGB; None for an encoding we do not convert."""
    channels = CHANNELS.get(msg.encoding)
    if channels is None:
        return None
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    buf = np.asarray(msg.data, dtype=np.uint8)
    if step < w * channels or buf.size < h * step:
        raise ValueError(f"{msg.encoding} {w}x{h} with step {step} needs {h * step} bytes, got {buf.size}")
    img = buf[:h * step].reshape(h, step)[:, :w * channels].reshape(h, w, channels)
    if msg.encoding == "mono8":
        return np.repeat(img, 3, axis=2)
    if msg.encoding in ("bgr8", "bgra8"):
        return np.ascontiguousarray(img[:, :, 2::-1])
    return np.ascontiguousarray(img[:, :, :3])
