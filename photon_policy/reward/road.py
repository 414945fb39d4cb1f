"""Is the car on the road? A drivable-area check on the camera frame, ROS-free.

The speed-gated reward (model.py) pays for speed where the driver would not take over; it has no
view of the road itself, and a policy that runs wide at a hairpin at speed loses the lap where
the fleet's drivers rarely took over. This check is what the car sees of that: the simulated
camera looks down on a fixed patch of road around the car, so the share of road-grey pixels among
the road and grass pixels around the car's own sprite says how much of it is still on the road
(1.0 on the road, 0.0 fully on grass). It reads the camera frame only, never the simulator's
tiles or score: the simulator stays the judge. On a real car this is the job of a drivable-area
segmentation of the camera; the reward's gate takes any such fraction.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RoadCheck:
    rows: tuple[int, int] = (64, 80)
    """The frame rows around the car's sprite (96 x 96 frame; the car sits in rows 66-77)."""
    cols: tuple[int, int] = (42, 54)
    """The frame columns around it (the car: columns 45-50)."""
    grey_spread: int = 25
    """Road is grey: its channels differ by less than this..."""
    grey_range: tuple[int, int] = (80, 130)
    """...and their mean lies in this range (the car's black and red, the kerbs' white fall outside)."""
    green_margin: int = 40
    """Grass: green exceeds red by more than this."""

    def __call__(self, frame: np.ndarray) -> float:
        """frame (H, W, 3) uint8 RGB -> the fraction of road among the road and grass pixels around
        the car (1.0 when the patch holds neither, e.g. a frame of one colour)."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < self.rows[1] or frame.shape[1] < self.cols[1]:
            raise ValueError(f"a frame of shape {frame.shape} has no patch rows {self.rows}, columns {self.cols}")
        patch = frame[self.rows[0]:self.rows[1], self.cols[0]:self.cols[1]].astype(np.int16)
        mean = patch.mean(-1)
        road = np.count_nonzero((np.ptp(patch, -1) < self.grey_spread)
                                & (mean > self.grey_range[0]) & (mean < self.grey_range[1]))
        grass = np.count_nonzero(patch[..., 1] - patch[..., 0] > self.green_margin)
        return 1.0 if road + grass == 0 else road / (road + grass)
