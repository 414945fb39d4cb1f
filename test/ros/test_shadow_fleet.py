"""`photon shadow fleet` over real DDS: one short lockstep episode of sim-shadow with an imperfect
driver; the drive, the shadow node's lines and the fleet's lines come out, every policy command paired."""
from __future__ import annotations

import json

from photon_policy.bags.reader import read_episode
from photon_policy.cli import main as photon

STEPS = 80


def lines(path):
    return [json.loads(s) for s in path.read_text().splitlines()]


def test_one_episode_fleet(tmp_path, capsys):
    out = tmp_path / "fleet"
    assert photon(["shadow", "fleet", "--seeds", "2000", "--drivers", "pulses", "--out", str(out),
                   "--max-steps", str(STEPS), "--quiet", "--log-dir", str(tmp_path / "logs")]) == 0
    [episode] = lines(out / "fleet.jsonl")
    assert (episode["seed"], episode["driver"], episode["run"]) == (2000, "pulses", "s2000_pulses")
    assert f"{STEPS + 1}/{STEPS + 1} frames" in episode["summary"] and "without" not in episode["summary"]
    drive = read_episode(out / episode["bag"], drive_topic="/policy/drive")
    assert len(drive.arrays) == STEPS + 1 and drive.arrays.seed == 2000
    [shadow] = lines(out / "clips" / "drives.jsonl")
    # Lockstep waits for the policy (the fleet's gate), and the episode starts once the shadow node hears
    # both commands: every answer, from the first frame's on, is paired.
    assert shadow["policy_commands"] == shadow["pairs"] >= STEPS and shadow["context"] == "pulses"
    assert shadow["seeds"] == [2000] and shadow["distance_m"] > 10.0
    assert "1 episode(s)" in capsys.readouterr().out
