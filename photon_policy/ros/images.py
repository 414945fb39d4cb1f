"""sensor_msgs/Image (and CompressedImage) <-> RGB arrays: the bag reader, the camera-fed nodes
and every image publisher use these.

On a robot with a system ROS 2, `cv_bridge` does the conversion when it is importable; here
(no cv_bridge wheel) a numpy codec for the encodings below serves, and
test/unit/test_ros_codecs.py holds the two to the same frames. Compressed frames (JPEG, PNG)
are decoded with OpenCV.
"""
from __future__ import annotations

from typing import Any

import numpy as np

CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}
"""Encodings we convert, with their channel counts; anything else is dropped and counted by the caller."""

try:
    from cv_bridge import CvBridge, CvBridgeError

    _BRIDGE: Any = CvBridge()
    BACKEND = "cv_bridge"
except ImportError:
    _BRIDGE = None
    CvBridgeError = ValueError
    BACKEND = "numpy"


def check_layout(msg: Any, channels: int) -> None:
    """ValueError naming what is wrong with the message's size, step or payload."""
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise ValueError(f"{msg.encoding} image of {w}x{h} pixels has nothing to show")
    buf_size = len(msg.data)
    if step < w * channels or buf_size < h * step:
        raise ValueError(f"{msg.encoding} {w}x{h} with step {step} needs {h * max(step, w * channels)} bytes, "
                         f"got {buf_size}")


def decode_numpy(msg: Any) -> np.ndarray | None:
    """The numpy codec: sensor_msgs/Image -> (H, W, 3) uint8 RGB; None for an encoding it does not convert."""
    channels = CHANNELS.get(msg.encoding)
    if channels is None:
        return None
    check_layout(msg, channels)
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    buf = _as_bytes(msg.data)
    img = buf[:h * step].reshape(h, step)[:, :w * channels].reshape(h, w, channels)
    if msg.encoding == "mono8":
        return np.repeat(img, 3, axis=2)
    if msg.encoding in ("bgr8", "bgra8"):
        return np.ascontiguousarray(img[:, :, 2::-1])
    return np.ascontiguousarray(img[:, :, :3])


def _as_bytes(data: Any) -> np.ndarray:
    """A uint8 view of a message's payload (bytes, array.array, numpy) without a copy; lists are copied."""
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:
        return np.asarray(data, dtype=np.uint8)


def decode_image(msg: Any) -> np.ndarray | None:
    """sensor_msgs/Image -> (H, W, 3) uint8 RGB; None for an encoding we do not convert;
    ValueError for a message whose size, step or payload do not add up."""
    channels = CHANNELS.get(msg.encoding)
    if channels is None:
        return None
    if _BRIDGE is None:
        return decode_numpy(msg)
    check_layout(msg, channels)  # cv_bridge raises obscure errors (or crashes) on these
    try:
        return np.ascontiguousarray(_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
    except CvBridgeError as exc:
        raise ValueError(str(exc)) from exc


def decode_compressed(msg: Any) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg, png) -> (H, W, 3) uint8 RGB; ValueError if it does not decode."""
    import cv2

    data = _as_bytes(msg.data)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None or bgr.size == 0:
        raise ValueError(f"{msg.format or 'compressed'} image of {data.size} bytes does not decode")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def image_message(frame: np.ndarray, stamp: Any, frame_id: str) -> Any:
    """(H, W, 3) uint8 RGB -> sensor_msgs/Image rgb8 with this header."""
    from sensor_msgs.msg import Image

    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    if _BRIDGE is not None:
        msg = _BRIDGE.cv2_to_imgmsg(frame, encoding="rgb8")
    else:
        msg = Image(height=frame.shape[0], width=frame.shape[1], encoding="rgb8", is_bigendian=0,
                    step=frame.shape[1] * 3)
        msg.data = frame.tobytes()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    return msg
