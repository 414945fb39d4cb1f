"""Drive-by-wire: command sanitizing, the speed loop, and the steering sign on the real car."""
import math

import numpy as np
import pytest

from photon_policy.sim.carracing import DT, CarRacingVehicle
from photon_policy.sim.drive_by_wire import DriveByWire, DriveByWireConfig, sanitize_command

CONFIG = DriveByWireConfig()
LOW = np.array([-1.0, 0.0, 0.0], dtype=np.float32)
HIGH = np.array([1.0, 1.0, 1.0], dtype=np.float32)


def in_action_space(action: np.ndarray) -> bool:
    return (action.dtype == np.float32 and action.shape == (3,) and bool(np.all(np.isfinite(action)))
            and bool(np.all(action >= LOW)) and bool(np.all(action <= HIGH)))


def test_clean_command_passes_unchanged():
    command = sanitize_command(0.1, 20.0, CONFIG)
    assert (command.steering_angle, command.speed, command.problems) == (0.1, 20.0, ())


@pytest.mark.parametrize("steering, speed, problem", [
    (math.nan, 10.0, "steering_angle_nonfinite"),
    (-math.inf, 10.0, "steering_angle_nonfinite"),
    (1.0, 10.0, "steering_angle_out_of_range"),
    (-0.7, 10.0, "steering_angle_out_of_range"),
    (0.1, math.nan, "speed_nonfinite"),
    (0.1, math.inf, "speed_nonfinite"),
    (0.1, 500.0, "speed_out_of_range"),
    (0.1, -3.0, "speed_out_of_range"),
])
def test_bad_command_is_flagged_and_made_safe(steering, speed, problem):
    command = sanitize_command(steering, speed, CONFIG)
    assert command.problems == (problem,)
    assert math.isfinite(command.steering_angle) and math.isfinite(command.speed)
    assert abs(command.steering_angle) <= CONFIG.max_steering_angle
    assert -CONFIG.max_reverse_speed <= command.speed <= CONFIG.max_speed


def test_limits_sent_as_float32_are_the_limits_not_bad_commands():
    cfg = DriveByWireConfig()
    full_lock = float(np.float32(cfg.max_steering_angle))  # 0.4000000059604645 on the wire
    assert full_lock > cfg.max_steering_angle
    for sign in (1.0, -1.0):
        clean = sanitize_command(sign * full_lock, float(np.float32(cfg.max_speed)), cfg)
        assert clean.problems == () and clean.steering_angle == sign * cfg.max_steering_angle
    assert sanitize_command(cfg.max_steering_angle + 1e-3, 10.0, cfg).problems == ("steering_angle_out_of_range",)


def test_nonfinite_means_straight_and_stop_out_of_range_means_clamp():
    stop = sanitize_command(math.nan, math.nan, CONFIG)
    assert (stop.steering_angle, stop.speed) == (0.0, 0.0)
    clamped = sanitize_command(-2.0, 1e6, CONFIG)
    assert (clamped.steering_angle, clamped.speed) == (-CONFIG.max_steering_angle, CONFIG.max_speed)


def test_accelerates_below_target_and_brakes_above():
    dbw = DriveByWire()
    _, gas, brake = dbw.command_to_action(0.0, 30.0, 20.0, DT)
    assert gas > 0.0 and brake == 0.0
    dbw.reset()
    _, gas, brake = dbw.command_to_action(0.0, 20.0, 30.0, DT)
    assert gas == 0.0 and brake > 0.0


def test_holds_speed_without_pedals_near_target():
    # The car has no drag, so a tiny error must not flick between gas and brake.
    _, gas, brake = DriveByWire().command_to_action(0.0, 30.0, 30.1, DT)
    assert gas == 0.0 and brake == 0.0


def test_actions_always_inside_the_action_space():
    rng = np.random.default_rng(0)
    specials = [math.nan, math.inf, -math.inf, 0.0, 1e9, -1e9]
    dbw = DriveByWire()
    for _ in range(2000):
        steering, speed, measured = (rng.choice(specials) if rng.random() < 0.2
                                     else rng.normal(0.0, 50.0) for _ in range(3))
        assert in_action_space(dbw.command_to_action(steering, speed, measured, DT))
    assert in_action_space(dbw.brake_action(math.nan))
    assert in_action_space(dbw.brake_action(0.3))


def test_anti_windup_releases_the_gas_at_once():
    dbw = DriveByWire()
    for _ in range(50 * 60):  # a minute stuck far below target, gas saturated
        dbw.command_to_action(0.0, 90.0, 5.0, DT)
    _, gas, _ = dbw.command_to_action(0.0, 90.0, 91.0, DT)
    assert gas == 0.0


def test_integral_term_is_bounded():
    dbw = DriveByWire()
    error = 0.5  # small enough that no pedal saturates, so the integrator keeps running
    for _ in range(50 * 600):
        _, gas, _ = dbw.command_to_action(0.0, 40.0 + error, 40.0, DT)
    bound = (CONFIG.speed_kp * error + CONFIG.integral_limit - CONFIG.coast_band) / CONFIG.full_gas_accel
    assert 0.0 < gas <= bound + 1e-6


def test_steering_angle_maps_to_negated_gym_steer():
    steer, _, _ = DriveByWire().command_to_action(0.25, 10.0, 10.0, DT)
    assert steer == pytest.approx(-0.25)


@pytest.mark.parametrize("steering_angle", [0.2, -0.2])
def test_positive_steering_turns_the_simulated_car_left(steering_angle):
    vehicle = CarRacingVehicle()
    try:
        vehicle.reset(seed=0)
        start = vehicle.state()
        dbw = DriveByWire()
        yaw_change = 0.0
        previous = start.yaw
        for _ in range(60):
            state = vehicle.state()
            vehicle.step(dbw.command_to_action(steering_angle, 15.0, state.speed, DT))
            yaw = vehicle.state().yaw
            yaw_change += math.remainder(yaw - previous, math.tau)
            previous = yaw
        end = vehicle.state()
    finally:
        vehicle.close()
    assert end.speed > 5.0
    assert math.copysign(1.0, yaw_change) == math.copysign(1.0, steering_angle)
    assert abs(yaw_change) > 0.3
    # The wheels settle on the commanded angle: the mapping is 1 rad per unit of gym steer.
    assert end.steering_angle == pytest.approx(steering_angle, abs=0.01)
    assert math.copysign(1.0, end.yaw_rate) == math.copysign(1.0, steering_angle)
