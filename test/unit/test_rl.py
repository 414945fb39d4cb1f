"""`photon train rl` on the CPU, tiny: the shipped policy fine-tuned by PPO for a few updates on two
in-process envs with the simulator's reward (the oracle arm: no reward model to train here; the
learned reward's online scorer is held to the bag features in test_reward), then resumed."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from photon_policy.cli import main as photon
from photon_policy.policy.checkpoint import CheckpointError, load_policy
from photon_policy.policy.cli import resolve_checkpoint
from photon_policy.policy.export import EagerCompute
from photon_policy.policy.runtime import runtime_for
from photon_policy.rl.actor import BatchActor, FrozenTrunk, apply
from photon_policy.learning.loop import run_processes
from photon_policy.rl.env import DriveByWireCarRacing, make_envs
from photon_policy.rl.plot import eval_curve, main as plot_main
from photon_policy.rl.ppo import RLConfig, fine_tune
from photon_policy.rl.release import release
from photon_policy.sim.carracing import DT
from test_learning import _free_port

TINY = "rollout: 16\neval_interval: 1\neval_seeds: '2080'\neval_steps: 25\nmax_episode_steps: 40\nminibatch: 16\nepochs: 2\n"


def rows(run):
    with open(run / "log.csv") as f:
        return list(csv.DictReader(f))


def test_tiny_ppo_run_checkpoints_logs_and_resumes(tmp_path, capsys):
    config = tmp_path / "rl.yaml"
    config.write_text(TINY)
    run = tmp_path / "rl"
    args = ["train", "rl", "--oracle", "--out", str(run), "--config", str(config), "--envs", "2"]
    assert photon([*args, "--steps", "64", "--takeover-frames", "5"]) == 0
    first = rows(run)
    assert [int(r["takeovers"]) for r in first] == [0, 0]  # 32 steps from the line: the car is on the road
    assert [int(r["env_steps"]) for r in first] == [32, 64]
    assert all(np.isfinite(float(r[c])) for r in first for c in ("policy_loss", "value_loss", "kl_anchor", "eval_score"))
    _, ckpt = load_policy(run / "last.pt")  # an ordinary policy checkpoint: the node runs it
    assert ckpt["extra"]["rl"]["update"] == 2 and "start_policy_sha256" in ckpt["extra"]
    assert ckpt["train_config"]["takeover_frames"] == 5
    assert (run / "best.pt").is_file()
    assert photon([*args, "--steps", "96"]) == 0  # resumes from last.pt: one more update
    assert [int(r["env_steps"]) for r in rows(run)] == [32, 64, 96]
    assert "RL policy checkpoint" in capsys.readouterr().out
    # Out of time: the update under way ends the run, evaluated and saved (not every eval_interval).
    config.write_text(TINY.replace("eval_interval: 1", "eval_interval: 100") + "time_limit_s: 0\nkeep_evals: true\n")
    assert photon([*args, "--steps", "100000"]) == 0
    assert [int(r["env_steps"]) for r in rows(run)] == [32, 64, 96, 128]
    # keep_evals: the evaluated update kept beside last.pt (the earlier ones ran without it)
    assert sorted(p.name for p in run.glob("update_*.pt")) == ["update_00004.pt"]
    assert load_policy(run / "update_00004.pt")[1]["extra"]["rl"]["update"] == 4
    assert np.isfinite(float(rows(run)[-1]["eval_score"]))
    assert load_policy(run / "last.pt")[1]["extra"]["rl"]["update"] == 4
    assert "time limit 0 s reached at update 4 (128 env steps)" in capsys.readouterr().out
    assert eval_curve(run)[0] == [32, 64, 96, 128]
    assert plot_main([str(run), "--reference", "0", "--out", str(tmp_path / "arms.png")]) == 0
    assert (tmp_path / "arms.png").stat().st_size > 0
    # Released for the node: the same weights, no training state, and its origin noted.
    kept = load_policy(run / "update_00004.pt")[1]
    shipped = release(run / "update_00004.pt", tmp_path / "policy.pt")
    assert shipped["weights_sha256"] == kept["weights_sha256"] and shipped["optimizer"] is None
    assert "rl" not in shipped["extra"] and shipped["extra"]["rl_update"] == 4
    assert shipped["extra"]["released_from"] == "rl/update_00004.pt"
    assert (tmp_path / "policy.pt").stat().st_size < (run / "update_00004.pt").stat().st_size


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


def test_batched_traced_actor_commands_equal_the_node_runtime():
    """The actor's commands (the trunk traced and batched over the envs, the head eager) are the policy
    node's: PolicyRuntime with the policy's own eager frame_step, fed the same frames and car state."""
    policy, _ = load_policy(resolve_checkpoint(None))
    actor = BatchActor(FrozenTrunk(policy), 2)
    nodes = [runtime_for(EagerCompute(policy)) for _ in range(2)]
    envs = make_envs(2, [2080, 2081], 100)
    try:
        obs, _ = envs.reset(seed=0)
        seen = []
        for k in range(24):
            stamps = np.full(2, k * DT)
            commands, ready, head_inputs = actor.act(obs["frame"], stamps)
            expected = [node.push(obs["frame"][i], k * DT) for i, node in enumerate(nodes)]
            assert list(ready) == [r.command is not None for r in expected], f"frame {k}: ready {ready}"
            for i, r in enumerate(expected):
                if r.command is not None:
                    np.testing.assert_allclose(commands[i], r.command, rtol=1e-5, atol=1e-5, err_msg=f"frame {k} env {i}")
                    seen.append(head_inputs[i])
            apply(actor, None, np.full(2, k), obs, commands)
            for i, node in enumerate(nodes):
                node.add_applied(k * DT, *map(float, commands[i]))
                node.add_imu(k * DT, *map(float, obs["imu"][i]))
                node.add_odom(k * DT, float(obs["speed"][i, 0]))
            obs, *_ = envs.step(commands)
        assert len(seen) >= 2 * 10, f"only {len(seen)} frames with a whole context"
        assert np.isfinite(seen).all() and np.ptp(np.array(seen), 0).max() > 0  # the head read real, changing inputs
    finally:
        envs.close()


def _join_two_process_run(rank: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank),
                      LOCAL_RANK=str(rank))


def _ddp_worker(rank: int, port: int, config: dict) -> None:
    _join_two_process_run(rank, port)
    _, agent = run_processes("cpu", lambda procs: fine_tune(RLConfig(**config), procs))
    torch.save(agent.policy.head.state_dict(), Path(config["out_dir"]) / f"head_rank{rank}.pt")


def test_ddp_two_cpu_processes_gloo(tmp_path):
    """torchrun's layout on two CPU processes: each steps its own env on its own tracks, 2 updates with
    the gradients averaged; both end with the same head, and only rank 0 logs and checkpoints."""
    run = tmp_path / "rl"
    config = dict(policy=str(resolve_checkpoint(None)), oracle=True, out_dir=str(run), envs=1, rollout=16,
                  total_steps=64, eval_interval=1, eval_seeds="2080", eval_steps=20, max_episode_steps=100,
                  minibatch=8, epochs=2, progress=False)
    mp.spawn(_ddp_worker, args=(_free_port(), config), nprocs=2, join=True)
    heads = [torch.load(run / f"head_rank{r}.pt", weights_only=True) for r in (0, 1)]
    start, _ = load_policy(resolve_checkpoint(None))
    policy, ckpt = load_policy(run / "last.pt")
    for name, value in heads[0].items():
        assert torch.equal(value, heads[1][name]), f"{name} differs between the ranks"
        assert torch.equal(value, policy.head.state_dict()[name]), f"{name}: last.pt is not rank 0's head"
    assert any(not torch.equal(v, start.head.state_dict()[k]) for k, v in heads[0].items()), "the head never changed"
    assert ckpt["extra"]["world_size"] == 2 and ckpt["extra"]["rl"]["update"] == 2
    assert [int(r["env_steps"]) for r in rows(run)] == [32, 64]  # one log: rank 0's, both ranks' steps


def _ddp_refused_worker(rank: int, port: int, config: dict) -> None:
    _join_two_process_run(rank, port)
    try:
        run_processes("cpu", lambda procs: fine_tune(RLConfig(**config), procs))
    except ValueError as exc:
        (Path(config["out_dir"]) / f"refused_rank{rank}.txt").write_text(str(exc))


def test_ddp_a_start_track_refused_on_one_rank_stops_every_rank(tmp_path):
    """Each rank finds the start points of its own share of the tracks only; the start track here is
    rank 1's (60 frames: too short a drive to lose the lap on), and rank 0, which has none, must stop
    too instead of waiting for rank 1 at the first collective."""
    run = tmp_path / "rl"
    run.mkdir()
    config = dict(policy=str(resolve_checkpoint(None)), oracle=True, out_dir=str(run), envs=1, rollout=16,
                  total_steps=32, seeds="2080,2081", starts="2081", max_episode_steps=60, progress=False)
    mp.spawn(_ddp_refused_worker, args=(_free_port(), config), nprocs=2, join=True)
    assert "start track 2081: the starting policy misses no tile" in (run / "refused_rank1.txt").read_text()
    assert "another process refused one of its start tracks" in (run / "refused_rank0.txt").read_text()
    assert not (run / "last.pt").exists()


def test_release_refuses_a_file_that_is_not_a_policy_checkpoint_and_writes_nothing(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt.pt"):
        release(corrupt, tmp_path / "policy.pt")
    assert not (tmp_path / "policy.pt").exists()
