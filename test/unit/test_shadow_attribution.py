"""Who was heading off the road: the geometry, the verdict, and a branch driven in the simulator."""
from __future__ import annotations

import numpy as np
import pytest

from photon_policy.shadow.attribution import OFF_ROAD, Branch, centerline_offset, drive_branch, fault
from photon_policy.sim.drive_by_wire import DriveByWireConfig


def test_offset_is_the_distance_to_the_closed_centre_line():
    square = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
    assert centerline_offset(square, 5.0, 1.0) == pytest.approx(1.0)
    assert centerline_offset(square, -2.0, 5.0) == pytest.approx(2.0)  # the closing segment counts


def test_fault_names_who_alone_left_the_road():
    on, off, out = Branch(0.5, 10.0, ""), Branch(OFF_ROAD + 0.1, 2.0, ""), Branch(0.9, -100.0, "off_playfield")
    assert (fault(on, off), fault(off, on), fault(off, out), fault(on, on)) == ("policy", "driver", "both", "neither")
    back = Branch(OFF_ROAD + 0.5, 0.0, "", start_offset=OFF_ROAD + 0.4)  # already on the grass, not further out
    assert not back.off_road and fault(back, off) == "policy"


def test_full_lock_at_speed_leaves_the_road_and_a_slow_straight_start_does_not():
    steps = 120
    straight = np.tile([0.0, 10.0], (steps, 1))
    lock = straight.copy()
    lock[40:] = [0.4, 60.0]
    dbw = DriveByWireConfig()
    assert not drive_branch(2000, straight, 40, steps, dbw).off_road
    assert drive_branch(2000, lock, 40, steps, dbw).off_road
