"""The simulator's ROS-free core: commands in force, stale braking, truncation, seed order."""
import math

import pytest

from photon_policy.sim.drive_by_wire import DriveByWireConfig
from photon_policy.sim.carracing import DT
from photon_policy.sim.session import EPISODE_GAP_TICKS, SimulationSession


def _session(**kw):
    args = dict(seeds=[3, 4], repeat=False, max_steps=40, dbw_config=DriveByWireConfig())
    args.update(kw)
    return SimulationSession(**args)


def test_seeds_in_order_then_exhausted():
    s = _session()
    assert s.start_next_episode() and s.seed == 3
    assert s.start_next_episode() and s.seed == 4
    assert not s.start_next_episode()
    r = _session(repeat=True)
    assert [r.start_next_episode() and r.seed for _ in range(3)] == [3, 4, 3]


def test_car_accelerates_under_command_and_brakes_when_stale():
    s = _session()
    s.start_next_episode()
    for t in range(30):
        s.accept_command(0.0, 30.0, now=t * 0.02)
        s.step(now=t * 0.02, command_timeout=0.2)
    fast = s.state.speed
    assert fast > 10.0
    # No new command: after 0.2 s the held one is stale and the car brakes.
    for t in range(30, 40):
        s.step(now=t * 0.02 + 0.5, command_timeout=0.2)
    assert s.state.speed < fast - 5.0
    assert s.counters["stale_ticks"] == 10


def test_malformed_commands_are_counted_and_made_safe():
    s = _session()
    s.start_next_episode()
    assert s.accept_command(math.nan, 10.0, now=0.0) == ("steering_angle_nonfinite",)
    assert s.accept_command(0.1, math.inf, now=0.0) == ("speed_nonfinite",)
    assert s.command.speed == 0.0
    assert s.accept_command(5.0, 1e6, now=0.0) == ("steering_angle_out_of_range", "speed_out_of_range")
    assert s.command.steering_angle == pytest.approx(0.4) and s.command.speed == pytest.approx(100.0)
    assert s.counters["commands"] == 3


def test_truncates_at_max_steps():
    s = _session(max_steps=5)
    s.start_next_episode()
    for _ in range(5):
        r = s.step(now=0.0, command_timeout=None)
    assert r.truncated and r.reason == "time_limit" and s.episode_done


def test_each_episode_starts_a_second_of_sim_time_after_the_last():
    s = _session(seeds=[3, 4])
    s.start_next_episode()
    first = s.tick
    s.step(0.0, None)
    end = s.tick
    s.start_next_episode()
    assert first == 1 and s.tick - end == EPISODE_GAP_TICKS and EPISODE_GAP_TICKS * DT >= 1.0
