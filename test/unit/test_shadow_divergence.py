"""The shadow node's pure core: pairing by camera stamp, the score, event open/close with hysteresis."""
from __future__ import annotations

import math

import pytest

from photon_policy.shadow.divergence import Command, DivergenceConfig, EventDetector, Pair, Pairer

DT = 0.02
CFG = DivergenceConfig(steering_scale=0.1, speed_scale=10.0, open_threshold=1.0, min_duration_s=0.1,
                       close_threshold=0.5, close_duration_s=0.1, max_gap_s=0.5, max_driver_age_s=0.25,
                       pair_wait_s=0.1, warmup_s=0.0)


def pair(stamp: float, score: float) -> Pair:
    c = Command(stamp, 0.0, 0.0)
    return Pair(stamp, c, c, score)


def run(scores: list[float], config: DivergenceConfig = CFG, t0: float = 10.0):
    det, opened, closed = EventDetector(config), [], []
    for k, s in enumerate(scores):
        o, c = det.update(pair(round(t0 + k * DT, 6), s))
        opened += [o] if o else []
        closed += c
    return det, opened, closed


def test_score_is_the_norm_of_the_scaled_errors():
    assert CFG.score(0.3, 40.0) == pytest.approx(5.0)
    assert CFG.score(-0.1, 0.0) == pytest.approx(1.0)


def test_config_refuses_inverted_hysteresis():
    with pytest.raises(ValueError, match="close_threshold"):
        DivergenceConfig(open_threshold=1.0, close_threshold=1.5)


def test_pairs_with_the_driver_command_in_force_at_the_policy_stamp():
    p = Pairer(CFG)
    p.add_driver(Command(1.00, 0.0, 10.0))
    p.add_driver(Command(1.05, 0.1, 10.0))  # a 20 Hz joystick between 50 Hz frames
    assert p.add_policy(Command(1.04, 0.2, 10.0))[0].driver.stamp == 1.00
    [q] = p.add_policy(Command(1.06, 0.2, 10.0)) + p.add_driver(Command(1.10, 0.0, 10.0))
    assert q.driver.stamp == 1.05 and q.steering_error == pytest.approx(0.1) and q.score == pytest.approx(1.0)
    assert p.rate == 1.0


def test_policy_command_waits_for_a_late_driver_command():
    p = Pairer(CFG)
    p.add_driver(Command(0.98, 0.0, 0.0))
    assert p.add_policy(Command(1.00, 0.3, 0.0)) == []          # the driver's answer to 1.00 may still come
    [q] = p.add_driver(Command(1.00, 0.3, 0.0))                  # lockstep: both answer the same frame
    assert q.driver.stamp == 1.00 and q.score == 0.0


def test_unpaired_and_dropped_are_counted_by_reason():
    p = Pairer(CFG)
    assert p.add_policy(Command(1.0, 0.0, 0.0)) == []
    p.add_policy(Command(1.2, 0.0, 0.0))                          # 0.2 s later: 1.0 has waited long enough
    assert p.unpaired["no_driver"] == 1
    p.add_driver(Command(1.2, 0.0, 0.0))
    p.add_policy(Command(1.2, 0.0, 0.0))                          # the lockstep resend
    p.add_policy(Command(1.1, 0.0, 0.0))                          # out of order
    p.add_policy(Command(1.3, math.nan, 0.0))
    p.add_driver(Command(1.1, 0.0, 0.0))
    p.add_driver(Command(1.3, 0.0, math.inf))
    p.add_driver(Command(1.2, 0.0, 0.0))
    p.add_policy(Command(1.6, 0.0, 0.0))                          # the driver's newest is 0.4 s old
    p.resolve(flush=True)
    assert dict(p.unpaired) == {"no_driver": 1, "policy_duplicate": 1, "policy_out_of_order": 1, "policy_nan": 1,
                                "driver_stale": 1}
    assert dict(p.dropped) == {"driver_out_of_order": 1, "driver_nan": 1, "driver_duplicate": 1}
    assert (p.pairs, p.policy_commands) == (1, 3)


def test_event_opens_after_the_minimum_duration_and_starts_at_its_first_sample():
    det, opened, closed = run([0.0] * 5 + [2.0] * 6 + [0.0] * 10)   # 0.10 s above: just long enough
    [event] = closed
    assert opened == [event] and event.id == 1 and event.closed_by == "score"
    assert event.start == pytest.approx(10.10) and event.end == pytest.approx(10.20)
    assert event.peak == 2.0 and event.mean() == 2.0 and len(event.pairs) == 6


def test_short_spikes_do_not_open_an_event():
    det, opened, closed = run(([2.0] * 5 + [0.0]) * 5)   # 0.08 s above, then back: below min_duration
    assert opened == [] and closed == [] and det.events == 0


def test_hysteresis_keeps_an_event_open_between_the_thresholds():
    det, opened, closed = run([2.0] * 10 + [0.8] * 20 + [0.2, 0.2, 3.0] + [2.0] * 3 + [0.0] * 10)
    [event] = closed
    assert len(opened) == 1 and event.start == pytest.approx(10.0)
    assert event.end == pytest.approx(10.0 + 35 * DT) and event.peak == 3.0  # one event, dips included


def test_a_gap_in_the_pairs_closes_the_open_event():
    det = EventDetector(CFG)
    for k in range(10):
        det.update(pair(10.0 + k * DT, 2.0))
    opened, closed = det.update(pair(12.0, 2.0))
    assert [e.closed_by for e in closed] == ["gap"] and closed[0].end == pytest.approx(10.18)
    assert det.open is None and opened is None
    assert det.finish() == []


def test_finish_closes_the_open_event():
    det, _, _ = run([2.0] * 10)
    [event] = det.finish()
    assert event.closed_by == "shutdown" and event.end == pytest.approx(10.18)


def test_no_event_opens_during_the_warm_up_after_a_start_or_a_gap():
    config = DivergenceConfig(**{**CFG.__dict__, "warmup_s": 0.5})
    det, opened, closed = run([2.0] * 40, config)         # 0.78 s above from the start
    assert len(opened) == 1 and opened[0].start == pytest.approx(10.5)
    det.update(pair(20.0, 2.0))                           # a gap: warm-up again
    assert det.open is None and det.update(pair(20.2, 2.0)) == (None, [])
