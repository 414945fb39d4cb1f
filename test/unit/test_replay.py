"""Replaying and branching a simulator episode: the world model's counterfactual ground truth."""
from __future__ import annotations

import numpy as np
import pytest

from photon_policy.sim.carracing import CarRacingVehicle
from photon_policy.expert.in_process import drive_frames, shipped_configs
from photon_policy.sim.replay import EpisodeReplay, ReplayMismatch

SEED = 3
STEPS = 120


@pytest.fixture(scope="module")
def drive():
    """An expert drive: frames (T, H, W, 3), the commands applied after them, the drive-by-wire config."""
    frames, commands = drive_frames(SEED, STEPS)
    return frames, commands, shipped_configs()[1]


def test_frames_off_leaves_the_physics_alone():
    runs = []
    for rendering in (True, False):
        vehicle = CarRacingVehicle()
        vehicle.reset(SEED)
        vehicle.set_rendering(rendering)
        for k in range(60):
            result = vehicle.step(np.array([0.5 * np.sin(k / 7), 0.4, 0.0], dtype=np.float32))
        runs.append((result.frame, vehicle.state()))
        vehicle.close()
    (frame_on, state_on), (frame_off, state_off) = runs
    assert frame_on.shape == (96, 96, 3) and frame_off is None
    assert state_on == state_off


def test_replay_reproduces_the_drive_and_branches_turn_opposite_ways(drive):
    frames, commands, dbw_config = drive
    replay = EpisodeReplay(SEED, commands, frames, dbw_config)
    point, speed = 100, float(commands[99, 1])
    branches = replay.branch(point, [(0.0, float(commands[point, 1])), (0.4, speed), (-0.4, speed)], steps=2, every=5)
    assert branches.shape == (3, 2, 96, 96, 3) and branches.dtype == np.uint8
    # The drive's own next command reproduces its next frame; full lock either way departs from it.
    held = replay.branch(point, [tuple(commands[point])], steps=1, every=1)
    assert np.array_equal(held[0, 0], frames[point + 1])
    left, right = branches[1], branches[2]
    assert not np.array_equal(left[0], right[0])
    assert not np.array_equal(left[1], branches[0, 1])


def test_a_bag_the_replay_does_not_reproduce_is_refused(drive):
    frames, commands, dbw_config = drive
    tampered = commands.copy()
    tampered[20:40, 0] = 0.4  # full left for 0.4 s the recording never had
    with pytest.raises(ReplayMismatch, match="differs from the recorded one"):
        EpisodeReplay(SEED, tampered, frames, dbw_config).branch(80, [(0.0, 50.0)], steps=1, every=5)
    with pytest.raises(ValueError, match="outside the episode"):
        EpisodeReplay(SEED, commands, frames, dbw_config).branch(len(commands), [(0.0, 50.0)], 1, 5)
