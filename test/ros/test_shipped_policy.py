"""The shipped policy drives the simulator end to end over real DDS: camera -> world-model
latent -> policy -> /drive -> simulator, in lockstep, scored by the simulator."""
from __future__ import annotations

import re

import pytest

from photon_policy.cli import main as photon
from photon_policy.evaluation import evaluate

HELD_OUT_SEED = 100
"""Seeds 100-199 are never used in training (the world model and DAgger data use 1000+)."""

pytestmark = pytest.mark.slow  # simulated episodes through the ROS loop

def test_shipped_policy_drives_part_of_a_lap(tmp_path):
    report = evaluate("policy", [HELD_OUT_SEED], max_steps=300, log_dir=tmp_path, progress=False)
    [episode] = report.episodes
    # CarRacing pays 1000/N per track tile first visited and takes 0.1 per step: 300 steps
    # cost 30, so a score above 200 means the car took more than a fifth of the lap's
    # tiles, corners included, in 6 s without leaving the playfield.
    assert episode.reason == "time_limit", (episode, (tmp_path / "policy.log").read_text()[-2000:])
    assert episode.score > 200.0, episode


def test_demo_drives_with_the_shipped_policy_and_prints_its_score(capsys):
    assert photon(["demo", "--seed", str(HELD_OUT_SEED)]) == 0
    out = capsys.readouterr().out
    assert "shipped policy" in out
    score = re.search(rf"policy score on seed {HELD_OUT_SEED}: (-?\d+\.\d)", out)
    assert score is not None, out
    assert float(score.group(1)) > 200.0, out
