"""The few fields the shadow node reads, straight from the serialized (CDR) bytes.

At 50 Hz rclpy's deserialization of the commands and odometry cost the node more CPU than
everything else it does (Odometry alone builds two 36-element covariance arrays), and it
needs three numbers. Plain CDR (XCDR1, what rmw_fastrtps writes): 4 bytes of encapsulation,
then fields aligned to their size relative to the body; strings are a uint32 length (with
the NUL) then the bytes. test/unit/test_shadow_cdr.py holds these to rclpy's own decoding.
"""
from __future__ import annotations

import struct

BODY = 4


def _little(data: bytes | memoryview) -> bool:
    return data[1] == 1  # encapsulation 0x0001: CDR_LE; 0x0000: CDR_BE


def _align(offset: int, size: int) -> int:
    """`offset` (in the buffer) moved up to a multiple of `size` in the body."""
    body = offset - BODY
    return BODY + (body + size - 1) // size * size


def _after_string(data: bytes | memoryview, offset: int, order: str) -> int:
    offset = _align(offset, 4)
    (length,) = struct.unpack_from(order + "I", data, offset)
    return offset + 4 + length


def _after_header(data: bytes | memoryview, order: str) -> int:
    return _after_string(data, BODY + 8, order)  # stamp (sec, nanosec), then frame_id


def stamp_ns(data: bytes | memoryview, first_in_sequence: bool = False) -> int | None:
    """The header stamp of a message whose first field is a std_msgs/Header (or, with
    `first_in_sequence`, a sequence of such: tf2_msgs/TFMessage), in ns; None if it has none."""
    order = "<" if _little(data) else ">"
    offset = BODY + 4 if first_in_sequence else BODY
    if len(data) < offset + 8:
        return None
    if first_in_sequence and struct.unpack_from(order + "I", data, BODY)[0] == 0:
        return None
    sec, nanosec = struct.unpack_from(order + "iI", data, offset)
    return sec * 1_000_000_000 + nanosec


def drive(data: bytes | memoryview) -> tuple[float, float, float]:
    """ackermann_msgs/AckermannDriveStamped -> (stamp s, steering_angle, speed)."""
    order = "<" if _little(data) else ">"
    sec, nanosec = struct.unpack_from(order + "iI", data, BODY)
    offset = _align(_after_header(data, order), 4)
    steering, _, speed = struct.unpack_from(order + "fff", data, offset)
    return sec + nanosec * 1e-9, steering, speed


def odom_forward_speed(data: bytes | memoryview) -> float:
    """nav_msgs/Odometry -> twist.twist.linear.x."""
    order = "<" if _little(data) else ">"
    offset = _after_string(data, _after_header(data, order), order)  # child_frame_id
    offset = _align(offset, 8) + 8 * (7 + 36)  # pose: position, orientation, covariance[36]
    return struct.unpack_from(order + "d", data, offset)[0]
