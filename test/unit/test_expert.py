"""Expert driver on a real CarRacing track: search, speed profile, a full lap, noise."""
import math

import numpy as np
import pytest

from photon_policy.expert.pure_pursuit import ExpertConfig, ExpertDriver
from photon_policy.sim.carracing import CarRacingVehicle, VehicleState
from photon_policy.expert.in_process import run_episode

SEED = 0


@pytest.fixture(scope="module")
def track():
    vehicle = CarRacingVehicle()
    try:
        vehicle.reset(SEED)
        return vehicle.track_centerline(), vehicle.track_width
    finally:
        vehicle.close()


def on_track(centerline: np.ndarray, i: int, speed: float = 30.0, offset: float = 0.0) -> VehicleState:
    """A state at centreline point i heading along the track, `offset` m to its left."""
    n = len(centerline)
    direction = centerline[(i + 1) % n] - centerline[i]
    yaw = math.atan2(direction[1], direction[0])
    x, y = centerline[i] + offset * np.array([-math.sin(yaw), math.cos(yaw)])
    return VehicleState(x=x, y=y, yaw=yaw, vx=speed, vy=0.0, yaw_rate=0.0, ax=0.0, ay=0.0,
                        speed=speed, steering_angle=0.0, tiles_visited=0, tiles_total=n)


def drive_along(expert: ExpertDriver, centerline: np.ndarray, offset: float = 1.0):
    return [expert.act(on_track(centerline, i, offset=offset)) for i in range(0, 120, 2)]


def test_nearest_index_follows_the_car_across_the_start(track):
    centerline, width = track
    expert = ExpertDriver(None, centerline, width)
    n = len(centerline)
    for i in [n - 4, n - 3, n - 2, n - 1, 0, 1, 2, 3]:
        x, y = centerline[i] + 0.5
        assert expert.nearest_index(x, y) == i


def test_nearest_index_finds_the_car_after_a_jump(track):
    centerline, width = track
    expert = ExpertDriver(None, centerline, width)
    n = len(centerline)
    assert expert.nearest_index(*centerline[5]) == 5
    assert expert.nearest_index(*centerline[n // 2]) == n // 2


def test_speed_profile_is_slower_in_the_tightest_curve_than_on_the_longest_straight(track):
    centerline, width = track
    config = ExpertConfig()
    expert = ExpertDriver(config, centerline, width)
    kappa, profile = np.abs(expert.curvature), expert.speed_profile
    straight = np.concatenate([kappa, kappa]) < 0.002  # doubled so a straight may cross the start
    run_length, best = 0, (0, 0)  # (length, index where it ends)
    for i, is_straight in enumerate(straight):
        run_length = run_length + 1 if is_straight else 0
        if run_length > best[0]:
            best = (run_length, i)
    middle_of_straight = (best[1] - best[0] // 2) % len(centerline)
    tightest = int(np.argmax(kappa))
    assert profile[tightest] < profile[middle_of_straight]
    assert profile[tightest] ** 2 * kappa[tightest] <= config.max_lateral_accel * 1.001
    assert profile.max() <= config.max_speed


def test_expert_laps_a_track_through_drive_by_wire():
    result = run_episode(SEED)
    assert result.reason == "lap_complete"
    assert result.score > 850


def test_without_noise_commands_repeat_exactly(track):
    centerline, width = track
    expert = ExpertDriver(None, centerline, width)
    first = drive_along(expert, centerline)
    expert.reset()
    assert drive_along(expert, centerline) == first
    assert all(math.isfinite(s) and math.isfinite(v) for s, v in first)


def test_noise_is_reproducible_and_perturbs_only_the_steering(track):
    centerline, width = track
    clean = drive_along(ExpertDriver(None, centerline, width), centerline)
    config = ExpertConfig(steering_noise_std=0.05, noise_seed=7)
    noisy = ExpertDriver(config, centerline, width)
    first = drive_along(noisy, centerline)
    noisy.reset()
    assert drive_along(noisy, centerline) == first
    steering_gap = [abs(a[0] - b[0]) for a, b in zip(first, clean)]
    assert max(steering_gap) > 0.01
    assert [a[1] for a in first] == [b[1] for b in clean]
    noisy.reset(noise_seed=8)
    assert drive_along(noisy, centerline) != first


def test_clean_label_is_the_noise_free_command(track):
    centerline, width = track
    clean = ExpertDriver(None, centerline, width)
    noisy = ExpertDriver(ExpertConfig(steering_noise_std=0.05), centerline, width)
    for i in range(0, 60, 2):
        state = on_track(centerline, i, offset=1.0)
        steering, _ = clean.act(state)
        noisy.act(state)
        assert noisy.last_clean_steering == steering


def test_pulses_are_full_lock_runs_of_their_length_either_way_and_never_the_label(track):
    centerline, width = track
    config = ExpertConfig(steering_noise_std=0.01, steering_pulse_interval=0.5, steering_pulse_duration=0.1,
                          noise_seed=3)
    expert = ExpertDriver(config, centerline, width)
    commands, labels = [], []
    for i in range(len(centerline) * 3):
        commands.append(expert.act(on_track(centerline, i // 3, offset=0.5))[0])
        labels.append(expert.last_clean_steering)
    lock = np.isclose(np.abs(commands), config.max_steering_angle)
    runs = [len(r) for r in np.split(lock, np.flatnonzero(np.diff(lock)) + 1) if r[0]]
    # Pulses may run back to back (a new one can start the step after one ends): whole multiples.
    assert len(runs) >= 5 and all(r % 5 == 0 for r in runs), runs
    signs = {np.sign(c) for c, on in zip(commands, lock) if on}
    assert signs == {-1.0, 1.0}
    assert max(abs(x) for x in labels) < config.max_steering_angle
    with pytest.raises(ValueError, match="needs steering_noise_std > 0"):
        ExpertConfig(steering_pulse_interval=1.0)
