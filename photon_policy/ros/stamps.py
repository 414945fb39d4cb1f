"""builtin_interfaces/Time <-> float seconds (every header stamp in Photon goes through these)."""
from __future__ import annotations

import math

from builtin_interfaces.msg import Time


def stamp_from_seconds(seconds: float) -> Time:
    sec = int(math.floor(seconds))
    return Time(sec=sec, nanosec=int(round((seconds - sec) * 1e9)) % 1_000_000_000)


def seconds_from_stamp(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9
