"""RL's start points: episodes on the tracks where the starting policy fails begin near the failure,
by replaying its drive without frames, and the policy takes over with a whole context."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from photon_policy.paths import shipped_model
from photon_policy.policy.checkpoint import load_policy
from photon_policy.policy.cli import resolve_checkpoint
from photon_policy.rl.actor import BatchActor, FrozenTrunk, apply, hand_over
from photon_policy.rl.env import DriveByWireCarRacing, StartPoint, make_envs
from photon_policy.rl.failures import main as failures_main
from photon_policy.rl.ppo import Drive, RLConfig, handed_over, start_points, train
from test_rl import rows
from photon_policy.sim.carracing import DT

SEED, HAND_OVER, WARMUP = 2080, 40, 11


def drive_rendered(commands: np.ndarray, frames: int) -> list[dict]:
    """The observations of frames 0..frames of `commands` driven from the start line, every frame drawn."""
    env = DriveByWireCarRacing([SEED])
    try:
        seen = [env.reset(seed=SEED)[0]]
        for k in range(frames):
            seen.append(env.step(commands[k])[0])
        return seen
    finally:
        env.close()


def test_the_hand_over_is_the_drive_replayed_and_its_warmup_the_frames_before():
    rng = np.random.default_rng(0)
    commands = np.stack([rng.uniform(-0.2, 0.2, 60), rng.uniform(5.0, 30.0, 60)], 1)
    env = DriveByWireCarRacing([SEED], starts={SEED: StartPoint(commands, HAND_OVER, HAND_OVER)}, warmup=WARMUP)
    try:
        obs, info = env.reset()
        after, *_ = env.step(np.array([0.1, 20.0]))
    finally:
        env.close()
    seen = drive_rendered(np.concatenate([commands[:HAND_OVER], [[0.1, 20.0]]]), HAND_OVER + 1)
    assert info["start_frame"] == HAND_OVER and info["stamp"] == pytest.approx(HAND_OVER * DT)
    for key in ("frame", "imu", "speed"):
        np.testing.assert_array_equal(obs[key], seen[HAND_OVER][key], err_msg=key)
        np.testing.assert_array_equal(after[key], seen[HAND_OVER + 1][key], err_msg=f"{key} after the hand-over")
    warm = info["warmup"]
    assert warm["frames"].shape == (WARMUP, 96, 96, 3)
    for j, k in enumerate(range(HAND_OVER - WARMUP, HAND_OVER)):
        np.testing.assert_array_equal(warm["frames"][j], seen[k]["frame"], err_msg=f"warm-up frame {k}")
        np.testing.assert_array_equal(warm["imu"][j], seen[k]["imu"])
        np.testing.assert_allclose(warm["commands"][j], commands[k], rtol=1e-6)
    assert seen[HAND_OVER]["speed"][0] > 1.0  # the car was driven there, not placed at the start line


def test_every_episode_of_a_vector_env_on_a_start_track_is_handed_over():
    commands = np.tile([0.0, 20.0], (60, 1))
    envs = make_envs(1, [SEED], 60, starts={SEED: StartPoint(commands, HAND_OVER, HAND_OVER)}, warmup=WARMUP)
    try:
        _, infos = envs.reset()
        for episode in range(2):
            warm = handed_over(infos)
            assert list(warm) == [0] and warm[0]["frames"].shape == (WARMUP, 96, 96, 3), f"episode {episode}"
            for step in range(60 - HAND_OVER):  # to the 60-step limit; the last step resets (same step)
                assert step == 0 or not handed_over(infos)
                _, _, _, trunc, infos = envs.step(np.array([[0.0, 20.0]]))
            assert trunc[0]
    finally:
        envs.close()


def test_the_policy_takes_over_with_the_commands_it_would_have_given_having_driven_there():
    """A runtime warmed on the frames before the hand-over answers the hand-over frame as one that
    drove the whole way (the context is all it reads), and is ready at once."""
    policy, _ = load_policy(resolve_checkpoint(None))
    trunk = FrozenTrunk(policy)
    full, warmed = BatchActor(trunk, 1), BatchActor(trunk, 1)
    env = DriveByWireCarRacing([SEED])
    commands = []
    try:
        obs, _ = env.reset(seed=SEED)
        for k in range(HAND_OVER):
            batch = {key: v[None] for key, v in obs.items()}
            command, _, _ = full.act(batch["frame"], np.array([k * DT]))
            apply(full, None, np.array([k]), batch, command)
            commands.append(command[0])
            obs, *_ = env.step(command[0])
        expected, ready, _ = full.act(obs["frame"][None], np.array([HAND_OVER * DT]))
    finally:
        env.close()
    env = DriveByWireCarRacing([SEED], starts={SEED: StartPoint(np.array(commands), HAND_OVER, HAND_OVER)},
                               warmup=WARMUP)
    try:
        obs, info = env.reset()
    finally:
        env.close()
    k = hand_over(warmed, None, 0, info["warmup"])
    command, ready_now, _ = warmed.act(obs["frame"][None], np.array([k * DT]))
    assert ready[0] and ready_now[0]
    np.testing.assert_allclose(command, expected, rtol=1e-5, atol=1e-5)


def drive_with(first_visit: list[int], frames: int = 1000) -> Drive:
    return Drive(0.0, 0.0, np.zeros((frames, 2)), np.array(first_visit), False)


def test_the_failure_is_where_the_lap_was_lost():
    # Tiles 3-4 never touched: the lap was lost when the car first touched a tile beyond them.
    assert drive_with([0, 0, 50, -1, -1, 130, 120, 200]).failure == 121
    # Every tile it reached touched, then no new one: it left the road after its last.
    assert drive_with([0, 0, 50, 90, 400, -1, -1]).failure == 401
    # Still gaining tiles near the end: too slow, no one place.
    assert drive_with([0, 0, 50, 90, 400, 990, -1]).failure is None


def test_a_track_the_policy_is_only_slow_on_is_refused_as_a_start_track(tmp_path):
    # 60 frames are too few for a lap, and the policy misses no tile in them.
    config = RLConfig(policy=str(resolve_checkpoint(None)), oracle=True, seeds=str(SEED), starts=str(SEED),
                      max_episode_steps=60)
    policy, _ = load_policy(config.policy)
    with pytest.raises(ValueError, match=rf"start track {SEED}: the starting policy misses no tile and is still "
                                         r"gaining tiles at frame 60"):
        start_points(config, FrozenTrunk(policy), WARMUP, [SEED])


def test_a_run_starts_where_the_imitation_policy_loses_track_52(tmp_path, capsys):
    """Track 52 (a training track): the BC policy (models/policy_bc.pt, where RL started) misses tiles
    158-160 near frame 480, so the lap never ends (890.0). Its start points lie before that, and a tiny
    run trains from them."""
    bc = shipped_model("policy_bc.pt", "BC policy")
    config = RLConfig(policy=str(bc), oracle=True, out_dir=str(tmp_path / "rl"), envs=1,
                      seeds="52", starts="52", start_window=(40, 10), rollout=16, total_steps=32, eval_interval=2,
                      eval_seeds="2080", eval_steps=20, minibatch=8, epochs=1, progress=False)
    train(config)
    out = capsys.readouterr().out
    lost = re.search(r"start track 52: score 890\.0, lap lost at frame (\d+), hand-over in frames \[(\d+), (\d+)\]", out)
    assert lost, out
    failure, first, last = map(int, lost.groups())
    assert 450 <= failure <= 520 and (first, last) == (failure - 40, failure - 10)
    assert [int(r["env_steps"]) for r in rows(tmp_path / "rl")] == [16, 32]


def test_start_tracks_must_be_training_tracks():
    with pytest.raises(ValueError, match=r"start tracks \[7\] are not training tracks"):
        RLConfig(policy="p", oracle=True, seeds="0-5", starts="7")
    with pytest.raises(ValueError, match="start_window"):
        RLConfig(policy="p", oracle=True, start_window=(5, 10))


def test_the_failure_search_finds_the_start_tracks(tmp_path, capsys):
    """`python -m photon_policy.rl.failures`: the BC policy loses track 52 near frame 480 (above); 600
    frames are too few for the lap of 2080, where it misses no tile: slow. The JSON lists both as an RL
    config wants them (starts, seeds)."""
    out = tmp_path / "failures.json"
    bc = shipped_model("policy_bc.pt", "BC policy")
    assert failures_main(["--policy", str(bc), "--seeds", "52,2080", "--workers", "2", "--max-steps", "600",
                          "--json", str(out)]) == 0
    found = json.loads(out.read_text())
    assert (found["lost"], found["slow"]) == ([52], [2080])
    lost = found["rows"][0]
    assert lost["seed"] == 52 and 440 <= lost["lost_at"] <= 520, lost
    assert found["rows"][1]["steps"] == 600 and found["rows"][1]["lost_at"] is None
    assert "track 52: lost" in capsys.readouterr().out
