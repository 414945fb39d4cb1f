"""`photon train rl` on the CPU, tiny: the shipped policy fine-tuned by PPO for a few updates on two
in-process envs with the simulator's reward (the oracle arm: no reward model to train here; the
learned reward's online scorer is held to the bag features in test_reward), then resumed."""
from __future__ import annotations

import csv

import numpy as np

from photon_policy.cli import main as photon
from photon_policy.policy.checkpoint import load_policy
from photon_policy.rl.env import DriveByWireCarRacing

TINY = "rollout: 16\neval_interval: 1\neval_seeds: '2080'\neval_steps: 25\nmax_episode_steps: 40\nminibatch: 16\nepochs: 2\n"


def rows(run):
    with open(run / "log.csv") as f:
        return list(csv.DictReader(f))


def test_tiny_ppo_run_checkpoints_logs_and_resumes(tmp_path, capsys):
    config = tmp_path / "rl.yaml"
    config.write_text(TINY)
    run = tmp_path / "rl"
    args = ["train", "rl", "--oracle", "--out", str(run), "--config", str(config), "--envs", "2"]
    assert photon([*args, "--steps", "64"]) == 0
    first = rows(run)
    assert [int(r["env_steps"]) for r in first] == [32, 64]
    assert all(np.isfinite(float(r[c])) for r in first for c in ("policy_loss", "value_loss", "kl_anchor", "eval_score"))
    _, ckpt = load_policy(run / "last.pt")  # an ordinary policy checkpoint: the node runs it
    assert ckpt["extra"]["rl"]["update"] == 2 and "start_policy_sha256" in ckpt["extra"]
    assert (run / "best.pt").is_file()
    assert photon([*args, "--steps", "96"]) == 0  # resumes from last.pt: one more update
    assert [int(r["env_steps"]) for r in rows(run)] == [32, 64, 96]
    assert "RL policy checkpoint" in capsys.readouterr().out


def test_env_sanitises_commands():
    env = DriveByWireCarRacing([0], max_steps=3)
    try:
        obs, info = env.reset()
        assert obs["frame"].shape == (96, 96, 3) and info["seed"] == 0
        for command in ([float("nan"), 30.0], [5.0, 1e9], [0.0, -50.0]):
            obs, _, term, trunc, info = env.step(np.array(command))
            assert np.isfinite(obs["speed"]).all() and np.isfinite(obs["imu"]).all()
        assert trunc and info["reason"] == "time_limit"
    finally:
        env.close()
