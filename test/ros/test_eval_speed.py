"""`photon eval --realtime`: the policy drives at the simulator's wall clock, and the report gives each
step's command age and the late, stale and dropped frames. (That lockstep scores equal the same
policy's in process, seed for seed, is benchmarks/eval_speed.py's `same_scores`.)"""
from __future__ import annotations

import json

import pytest

from photon_policy.cli import main as photon

SEED = 100
STEPS = 120

pytestmark = pytest.mark.slow  # simulated episodes through the ROS loop


def test_eval_realtime_reports_command_age_and_late_and_dropped_frames(tmp_path, capsys):
    out = tmp_path / "realtime.json"
    code = photon(["eval", "--driver", "policy", "--seeds", str(SEED), "--max-steps", str(STEPS), "--realtime",
                   "--json", str(out), "--log-dir", str(tmp_path / "logs")])
    assert code == 0, capsys.readouterr()
    report = json.loads(out.read_text())
    assert report["mode"] == "realtime"
    [episode] = report["episodes"]
    timing = episode["timing"]
    ages = timing["command_age_ms"]
    assert timing["steps"] == episode["steps"] == STEPS, timing
    # Every step acted on a command (its age listed) or braked for want of a fresh one.
    assert len(ages) + timing["stale_steps"] == STEPS, timing
    # The simulator waits for the driver's first command, so a policy still starting up costs nothing;
    # after that a stall of command_timeout (0.2 s) would brake: a few such steps at most.
    assert timing["stale_steps"] < STEPS // 2, timing
    # Ages are whole frame periods (sim time), never negative: 0 = the answer to the newest frame.
    assert all(a >= 0.0 and abs(a / 20.0 - round(a / 20.0)) < 1e-3 for a in ages), ages
    assert timing["late_steps"] == sum(a > 0.0 for a in ages)
    assert 0 <= timing["dropped_frames"] <= STEPS
    assert 0.0 < timing["response_ms_p50"] <= timing["response_ms_p99"] < 10_000.0, timing
    assert report["timing"]["steps"] == STEPS and report["timing"]["command_age_ms_max"] == max(ages)
    printed = capsys.readouterr().out
    assert "(realtime)" in printed and "late" in printed and "command age" in printed, printed
