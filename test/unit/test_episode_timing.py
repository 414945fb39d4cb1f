"""The simulator's per-episode command timing (photon_policy.sim.timing), on scripted ticks."""
from __future__ import annotations

from photon_policy.sim.timing import EpisodeTiming

DT = 0.02


def test_on_time_late_stale_and_dropped_frames_are_told_apart():
    timing = EpisodeTiming()
    stamps = [round(DT * k, 2) for k in range(1, 7)]
    for k, stamp in enumerate(stamps[:5]):
        timing.frame(stamp, now=k * DT)
        timing.frame(stamp, now=k * DT + 0.5)  # a resend keeps the first publication time
    timing.answer(stamps[0], now=0.004)
    timing.step(stamps[0], stamps[0], stale=False)        # on time: age 0
    timing.step(stamps[1], stamps[0], stale=False)        # answer to frame 2 not there yet: late by a frame
    timing.answer(stamps[1], now=0.05)
    timing.answer(stamps[2], now=0.06)
    timing.step(stamps[2], stamps[2], stale=False)        # frame 2's answer arrived, but after frame 3's: dropped
    timing.step(stamps[3], None, stale=True)              # nothing fresh: braking
    timing.step(stamps[4], stamps[2], stale=False)        # two frames behind
    s = timing.summary()
    assert timing.ages_ms == [0.0, 20.0, 0.0, 40.0]
    assert (s["steps"], s["late_steps"], s["stale_steps"]) == (5, 2, 1)
    # Frames 2, 4 and 5 never drove the car (4's and 5's answers never came).
    assert s["dropped_frames"] == 3
    assert (s["command_age_ms_p50"], s["command_age_ms_max"]) == (10.0, 40.0)
    assert s["response_ms_p50"] == 20.0  # 4, 30 and 20 ms after each frame's first publication


def test_an_episode_without_steps_reports_no_ages():
    s = EpisodeTiming().summary()
    assert s["steps"] == s["late_steps"] == s["dropped_frames"] == 0
    assert s["command_age_ms_p50"] != s["command_age_ms_p50"]  # nan: no age to report
