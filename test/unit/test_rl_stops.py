"""`photon train rl`'s stops and its time cost, for real: tiny PPO runs on CarRacing (one env, a few
updates) scored by reward checkpoints written here with chosen weights (a RewardNet in the real
format, loaded and hash-checked like a trained one), so that what goes wrong goes wrong in the
run itself: the loss overflows, the rollout reward falls."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from photon_policy.learning.checkpoint import content_hash
from photon_policy.learning.trainer import TrainingDiverged
from photon_policy.policy.checkpoint import load_policy
from photon_policy.policy.cli import resolve_checkpoint
from photon_policy.reward.features import SPEED_COLUMN
from photon_policy.reward.model import RewardConfig, RewardNet, save_reward
from photon_policy.reward.road import RoadCheck
from photon_policy.rl.actor import BatchActor, FrozenTrunk, apply
from photon_policy.rl.env import DriveByWireCarRacing, Takeover, make_envs
from photon_policy.rl.ppo import RLConfig, reward_scorers, step_rewards, taken_over, train
from photon_policy.sim.carracing import DT
from world_model_node.checkpoint import load_checkpoint
from test_rl import rows
from world_model_node.cli import resolve_checkpoint as resolve_world_model


def reward_checkpoint(path, set_weights, **config) -> str:
    """A reward checkpoint for the shipped world model whose weights `set_weights` chooses."""
    torch.manual_seed(0)
    net = RewardNet(RewardConfig(design="rlif", **config))
    with torch.no_grad():
        set_weights(net)
    wm_hash = content_hash(load_checkpoint(resolve_world_model(None)))
    return str(save_reward(path, net, extra={"world_model_sha256": wm_hash}))


def tiny(tmp_path, reward: str, **overrides) -> RLConfig:
    return RLConfig(**{"policy": str(resolve_checkpoint(None)), "reward": reward,
                       "reward_world_model": str(resolve_world_model(None)), "out_dir": str(tmp_path / "rl"),
                       "envs": 1, "seeds": "0", "eval_seeds": "2080", "eval_steps": 20, "eval_interval": 1,
                       "max_episode_steps": 200, "minibatch": 16, "epochs": 2, "progress": False, **overrides})


def assert_last_is_good(run, update: int) -> None:
    policy, ckpt = load_policy(run / "last.pt")  # verified: content hash, finite weights
    rl = ckpt["extra"]["rl"]
    assert rl["update"] == update, f"last.pt holds update {rl['update']}"
    assert torch.isfinite(rl["log_std"]).all() and all(torch.isfinite(v).all() for v in rl["value"].values())


def test_a_non_finite_loss_stops_the_run_and_last_pt_keeps_the_last_good_update(tmp_path):
    # A reward model whose output is finite but huge (1e30 every model step): its returns square past
    # float32's range in the value loss. The learned reward starts at frame 15 (a whole context), so
    # update 1 (frames 0-11) learns from zeros and update 2 meets the first rewards.
    def huge(net):
        for p in net.parameters():
            p.zero_()
        net.mlp[-1].bias.fill_(1e30)

    config = tiny(tmp_path, reward_checkpoint(tmp_path / "huge.pt", huge), rollout=12, total_steps=120)
    with pytest.raises(TrainingDiverged, match=r"update 2: the PPO loss is not finite \(inf\): stopping "
                                               r"\(.*last\.pt holds the last good interval\)"):
        train(config)
    run = tmp_path / "rl"
    assert [r["update"] for r in rows(run)] == ["1"]
    assert math.isfinite(float(rows(run)[0]["value_loss"]))
    assert_last_is_good(run, update=1)


def _pays_for_slowness(net) -> None:
    for p in net.parameters():
        p.zero_()
    net.mlp[0].weight[0, net.config.state_dim + SPEED_COLUMN] = 10.0
    net.mlp[2].weight[0, 0] = -1.0
    net.mlp[2].bias.fill_(1.0)


def test_a_reward_collapse_stops_the_run_with_its_reason(tmp_path):
    # A reward model that pays for going slowly, r = 1 - silu(10 x normalised speed), while the policy
    # accelerates from the start line: the rollout reward falls below collapse_fraction of the first.
    config = tiny(tmp_path, reward_checkpoint(tmp_path / "slow.pt", _pays_for_slowness, layers=1, width=1), rollout=20,
                  total_steps=200, collapse_patience=2)
    with pytest.raises(TrainingDiverged, match=r"update 3: reward collapse: the rollout reward -?[\d.]+ stayed below "
                                               r"0\.2 x the first \([\d.]+\) for 2 updates: stopping \(.*last\.pt holds"):
        train(config)
    run = tmp_path / "rl"
    rewards = [float(r["reward_mean"]) for r in rows(run)]
    assert len(rewards) == 3 and rewards[0] > 0 and all(r < 0.2 * rewards[0] for r in rewards[1:]), rewards
    assert_last_is_good(run, update=2)  # the collapsing update itself is not saved


def test_a_reward_collapse_is_judged_before_the_time_cost(tmp_path):
    # The same collapse under a time cost large enough to make every logged reward negative: the
    # check compares the learned reward before the cost, so a negative first update does not switch it off.
    config = tiny(tmp_path, reward_checkpoint(tmp_path / "slow.pt", _pays_for_slowness, layers=1, width=1), rollout=20,
                  total_steps=200, collapse_patience=2, time_cost=20.0)
    with pytest.raises(TrainingDiverged, match=r"update 3: reward collapse"):
        train(config)
    assert all(float(r["reward_mean"]) < 0 for r in rows(tmp_path / "rl"))


def test_time_cost_makes_standing_still_score_negative_and_not_with_the_oracle(tmp_path):
    reward = reward_checkpoint(tmp_path / "speed.pt", lambda net: None, speed_gate=True)  # untrained, speed-gated
    policy, _ = load_policy(resolve_checkpoint(None))
    make_scorer, _ = reward_scorers(reward, str(resolve_world_model(None)))
    actor, scorer = BatchActor(FrozenTrunk(policy), 1), make_scorer()
    env = DriveByWireCarRacing([2080], max_steps=40)
    learned, sim = [], []
    try:
        obs, _ = env.reset()
        for k in range(40):
            batch, stop = {key: v[None] for key, v in obs.items()}, np.zeros((1, 2), np.float32)
            learned.append(apply(actor, [scorer], np.array([k]), batch, stop))
            obs, r, *_ = env.step(stop[0])
            sim.append(np.array([r], np.float32))
    finally:
        env.close()
    learned, sim = np.concatenate(learned), np.concatenate(sim)
    free = step_rewards(RLConfig(policy="p", reward=reward), learned)
    costly = step_rewards(RLConfig(policy="p", reward=reward, time_cost=0.5), learned)
    oracle = step_rewards(RLConfig(policy="p", oracle=True, time_cost=0.5), learned, sim)
    assert abs(free.sum()) < 1e-3, f"standing still, the speed-gated reward paid {free.sum()}"
    assert costly.sum() == pytest.approx(-0.5 * 40 * DT, rel=1e-3) and costly.sum() < 0
    np.testing.assert_array_equal(oracle, sim)  # the simulator's own reward, no time cost on top


def test_speed_reference_pays_the_learned_reward_per_metre():
    config = RLConfig(policy="p", reward="r", time_cost=5.0, speed_reference=70.0)
    learned = np.full(4, 0.2, np.float32)
    r = step_rewards(config, learned, speed=np.array([70.0, 140.0, 0.0, -3.0], np.float32))
    np.testing.assert_allclose(r, [0.2 - 0.1, 0.4 - 0.1, -0.1, -0.1], rtol=1e-6)  # reversing earns nothing
    # The same 700 m of road at 70 and at 140 m/s: the same learned pay, half the time cost.
    slow = step_rewards(config, np.full(500, 0.2, np.float32), speed=np.full(500, 70.0, np.float32)).sum()
    fast = step_rewards(config, np.full(250, 0.2, np.float32), speed=np.full(250, 140.0, np.float32)).sum()
    assert fast - slow == pytest.approx(250 * 5.0 * DT, rel=1e-4)
    unscaled = step_rewards(RLConfig(policy="p", reward="r", time_cost=5.0), learned)
    np.testing.assert_allclose(unscaled, 0.2 - 0.1, rtol=1e-6)  # off by default: per second
    with pytest.raises(ValueError, match="needs the cars' speeds"):
        step_rewards(config, learned)
    with pytest.raises(ValueError, match="not with oracle"):
        RLConfig(policy="p", oracle=True, speed_reference=70.0)
    with pytest.raises(ValueError, match="speed_reference=-1.0"):
        RLConfig(policy="p", reward="r", speed_reference=-1.0)


def test_the_road_gate_pays_nothing_once_the_car_has_left_the_road(tmp_path):
    # A real drive: straight along the start of track 2080, then full lock at speed until the car is on
    # the grass. The same speed-gated reward scores each frame twice, without and with the road gate.
    def pays(net):
        for p in net.parameters():
            p.zero_()
        net.mlp[-1].bias.fill_(3.0)  # P(no intervention) ~0.95: the reward is ~ the speed

    reward = reward_checkpoint(tmp_path / "speed.pt", pays, speed_gate=True)
    plain, gated = (reward_scorers(reward, str(resolve_world_model(None)), road_gate=g)[0]() for g in (False, True))
    check = RoadCheck()
    env = DriveByWireCarRacing([2080], max_steps=200)
    drive = [(0.0, 8.0)] * 80 + [(env.action_space.high[0], 8.0)] * 120
    scores, on_road = [], []
    try:
        obs, _ = env.reset()
        for k, command in enumerate(drive):
            command = np.array(command, np.float32)
            on_road.append(check(obs["frame"]))
            scores.append([s.score(k, obs["frame"], command) for s in (plain, gated)])
            for s in (plain, gated):
                s.observe(obs["imu"], float(obs["speed"][0]))
            obs, *_ = env.step(command)
    finally:
        env.close()
    scores, on_road = np.array(scores), np.array(on_road)
    model_steps = np.flatnonzero(scores[:, 0] != 0)
    np.testing.assert_allclose(scores[model_steps, 1], scores[model_steps, 0] * on_road[model_steps], rtol=1e-5)
    straight = model_steps[(model_steps > 50) & (model_steps < 80)]
    assert (on_road[straight] == 1.0).all() and (scores[straight, 0] > 0.03).all()
    assert on_road[-20:].max() < 0.2, f"the car is still on the road: {on_road[-20:]}"
    assert scores[-20:, 0].max() > 0.03 and scores[-20:, 1].max() < 0.2 * scores[-20:, 0].max()
    with pytest.raises(ValueError, match="not with oracle"):
        RLConfig(policy="p", oracle=True, road_gate=True)
    with pytest.raises(ValueError, match="no patch rows"):
        check(np.zeros((48, 48, 3), np.uint8))


def test_a_car_off_the_road_is_taken_over_and_charged_and_only_in_training():
    # The road-gate test's drive (straight, then full lock onto the grass), once in the vector env RL
    # trains in, with a Takeover, and once in a plain env, which drives on.
    takeover = Takeover(frames=5)
    drive = [(0.0, 8.0)] * 80 + [(0.42, 8.0)] * 120
    envs = make_envs(1, [2080], 200, takeover=takeover)
    plain = DriveByWireCarRacing([2080], max_steps=200)
    on_road, ended, plain_ended = [], None, None
    try:
        envs.reset()
        plain.reset()
        for k, command in enumerate(drive):
            command = np.array(command, np.float32)
            obs, _, term, trunc, info = plain.step(command)
            on_road.append(takeover.road(obs["frame"]))
            plain_ended = plain_ended if plain_ended is not None or not (term or trunc) else (k, info["reason"])
            _, _, term, trunc, infos = envs.step(command[None])
            if term[0] or trunc[0]:
                ended = ended or (k, bool(term[0]), taken_over(infos, 1))
    finally:
        envs.close()
        plain.close()
    on_road = np.array(on_road)
    k, terminated, mask = ended
    assert terminated and mask.tolist() == [True], ended
    assert k > 80 and (on_road[k - 4:k + 1] < 0.5).all() and not (on_road[k - 9:k - 4] < 0.5).all()
    assert (on_road[30:80] == 1.0).all()  # nothing taken over on the straight
    assert plain_ended == (199, "time_limit")  # without a Takeover the lap lost on the grass drives on
    learned = np.full(1, 0.1, np.float32)
    config = RLConfig(policy="p", reward="r", time_cost=5.0, takeover_cost=10.0)
    assert step_rewards(config, learned, taken_over=mask)[0] == pytest.approx(0.1 - 0.1 - 10.0)
    assert step_rewards(config, learned, taken_over=~mask)[0] == pytest.approx(0.0, abs=1e-7)
    assert not taken_over({}, 2).any()
    with pytest.raises(ValueError, match="takeover_frames"):
        RLConfig(policy="p", reward="r", takeover_frames=-1)
