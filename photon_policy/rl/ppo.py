"""`photon train rl`: PPO fine-tuning of the driving policy in simulation, scored by the learned
reward model (or, for the oracle arm, the simulator's own reward), CleanRL style in one file.

  photon train rl --policy RUN|FILE --reward RUN|FILE --out RUN [--envs 2] [--steps N] [--kl 1.0]
  photon train rl --policy RUN --oracle --out RUN          # the simulator's reward: the upper bound
  torchrun --nproc_per_node=2 -m photon_policy.cli train rl ...   # DDP: every process its own envs

Why hand-written PPO and not Stable-Baselines3: the policy is not an SB3 network. It acts through
the node's PolicyRuntime (context latents, extras, fallbacks), and only its head learns (the world
model stays frozen: the reward model reads a frozen world model too, and two loaded CPU cores
cannot backpropagate through an encoder per frame). What PPO needs around that is ~150 lines here.

One update: `rollout` steps on each of `envs` Gymnasium envs (SyncVectorEnv, in process; the policy's
frozen trunk traced and batched over them, rl/actor.py); the action is the policy's command plus
Gaussian noise (learned log std); the reward is the learned one (with `road_gate`, scaled by the
share of the car on the road in its camera frame; with `speed_reference`, by its speed: per metre)
less `time_cost` a second, or the simulator's with `oracle`; with `takeover_frames`, an episode
whose car stays off the road that many frames ends there as a safety driver's takeover
(rl/env.py), charged `takeover_cost`; GAE; `epochs` passes of clipped PPO over minibatches, plus
`kl` x KL(current || starting policy), which for Gaussians of one std is the squared distance of
the means over 2 std^2: the anchor that keeps it driving.

With `starts`, episodes on the tracks the starting policy loses begin shortly before it loses them
(`start_points`: its own drive, replayed by the env; the runtime and scorer warmed on the frames
before the hand-over), so rollouts meet the failures that a whole lap meets once in ~1000 steps.

Every `eval_interval` updates and at the end: the noiseless policy drives the eval seeds (score
and learned return in log.csv), last.pt is written (resumable: head, value net, log std,
optimizer, step), best.pt when the learned eval return improved (the oracle arm: the score), and
with `keep_evals` a copy of every evaluated update (update_NNNNN.pt).
last.pt and best.pt are ordinary policy checkpoints: the policy node runs them unchanged.
A non-finite loss, or a rollout reward (before the time cost) below `collapse_fraction` of the first one for
`collapse_patience` updates in a row, stops the run with the reason; last.pt keeps the last
good interval.

Under torchrun (gloo on CPU) every process steps its own envs on its share of the training tracks,
the gradients are averaged over the processes, and rank 0 alone evaluates, logs and checkpoints
(`fine_tune`).
"""
from __future__ import annotations

import copy
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from tqdm import tqdm

from photon_policy.learning.checkpoint import content_hash
from photon_policy.learning.loop import Processes, RunLog, run_processes, seed_everything
from photon_policy.learning.trainer import TrainingDiverged
from photon_policy.policy.checkpoint import load_policy, load_policy_checkpoint, save_policy
from photon_policy.reward.model import load_reward
from photon_policy.reward.online import OnlineReward
from photon_policy.reward.road import RoadCheck
from photon_policy.rl.actor import BatchActor, FrozenTrunk, apply, hand_over
from photon_policy.rl.env import DriveByWireCarRacing, StartPoint, Takeover, make_envs
from photon_policy.seeds import parse_seeds
from photon_policy.sim.carracing import DT
from world_model_node.checkpoint import load_model as load_world_model
from world_model_node.interface import model_stride


@dataclass
class RLConfig:
    policy: str = ""
    """The policy checkpoint to start from (and to anchor to)."""
    reward: str = ""
    """The reward checkpoint; empty with oracle."""
    reward_world_model: str = ""
    """The world model the reward reads (its hash must match the reward checkpoint's)."""
    oracle: bool = False
    """Score with the simulator's reward instead (the upper-bound arm)."""
    out_dir: str = "runs/rl"
    envs: int = 2
    rollout: int = 128
    """Env steps per env per update."""
    total_steps: int = 20000
    """Env steps over all envs in the whole run."""
    seeds: str = "0-99"
    """Training tracks (cycled)."""
    starts: str = ""
    """Training tracks (among `seeds`) the starting policy does not finish: their episodes start near
    its failure (start_points), at a frame drawn from `start_window` before it, reached by replaying
    its own drive (rl/env.py); the lap and the 1000-step limit stay the episode's."""
    start_window: tuple = (150, 10)
    """Frames before the starting policy's failure: the earliest and the latest hand-over."""
    eval_seeds: str = "2080-2081"
    eval_steps: int = 400
    eval_interval: int = 5
    """Updates between evaluations (and last.pt)."""
    max_episode_steps: int = 1000
    lr: float = 3e-4
    epochs: int = 4
    minibatch: int = 64
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    kl: float = 1.0
    """Weight of the KL anchor to the starting policy (0: no anchor)."""
    init_std: tuple = (0.03, 3.0)
    """Initial action noise: rad, m/s."""
    value_coef: float = 0.5
    reward_scale: float = 1.0
    road_gate: bool = False
    """Scale the learned reward by the share of the car on the road in its camera frame (reward/road.py):
    leaving the road pays nothing, less the time cost."""
    time_cost: float = 0.0
    """Learned reward per second subtracted while driving (not with oracle, whose -0.1 a frame is one
    already). The speed-gated reward is >= 0, so without it a lap not finished pays more than one
    finished early; set it below the starting policy's rate (log.csv reward_mean / DT)."""
    speed_reference: float = 0.0
    """m/s (0: off). The learned reward scaled by the car's speed (odometry) over this: it pays per metre
    driven, not per second, so a lap driven faster earns as much in less time, and with the time cost
    earns more. Per second, speed pays nothing within PPO's ~2 s horizon (gamma 0.99 at 50 Hz). Set it
    to the starting policy's mean speed (arm I of docs/REWARD_RL.md: ~70 m/s), where the two rewards are equal."""
    time_limit_s: float = math.inf
    """Wall-clock budget: past it the run ends after the update under way, evaluated and saved as at
    total_steps (every rank stops at the same update)."""
    takeover_frames: int = 0
    """End a training episode as a takeover once the car's camera has seen it mostly off the road
    (road share < 0.5) for this many frames in a row (rl/env.py Takeover; 0: never). RLIF's
    intervention: the lap lost on the grass stops paying, and the takeover costs `takeover_cost`.
    Evaluation drives whole episodes regardless."""
    takeover_cost: float = 10.0
    """Reward charged at a takeover (the learned reward averages ~0.11 a frame: ~90 frames' worth)."""
    keep_evals: bool = False
    """Also keep every evaluated update as update_NNNNN.pt: best.pt is chosen by the learned return,
    which can miss the update that drives best, and these can be screened afterwards (rl/failures.py)."""
    collapse_fraction: float = 0.2
    collapse_patience: int = 3
    seed: int = 0
    threads: int = 1
    resume: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.policy:
            raise ValueError("give the policy to fine-tune (--policy)")
        if not self.oracle and not self.reward:
            raise ValueError("give a reward model (--reward) or --oracle")
        for scaling in ("road_gate", "speed_reference"):
            if self.oracle and getattr(self, scaling):
                raise ValueError(f"{scaling} scales the learned reward: not with oracle, whose reward is the "
                                 "simulator's")
        if self.speed_reference < 0 or not math.isfinite(self.speed_reference):
            raise ValueError(f"speed_reference={self.speed_reference} must be a finite speed >= 0 (0: off)")
        if self.takeover_frames < 0 or self.takeover_cost < 0:
            raise ValueError("takeover_frames and takeover_cost must be >= 0")
        if self.envs < 1 or self.rollout < 1 or self.minibatch < 1:
            raise ValueError("envs, rollout and minibatch must be >= 1")
        self.init_std = tuple(float(v) for v in self.init_std)
        self.start_window = tuple(int(v) for v in self.start_window)
        if not self.start_window[0] >= self.start_window[1] >= 0:
            raise ValueError(f"start_window {self.start_window}: give (earliest, latest) frames before the failure, "
                             "earliest >= latest >= 0")
        missing = sorted(set(parse_seeds(self.starts)) - set(parse_seeds(self.seeds))) if self.starts else []
        if missing:
            raise ValueError(f"start tracks {missing} are not training tracks (seeds: {self.seeds})")

    def to_dict(self) -> dict:
        return asdict(self)


class Agent(nn.Module):
    """The policy (its head learns), the value net on the head's input, and the action noise."""

    def __init__(self, policy, init_std) -> None:
        super().__init__()
        self.policy = policy
        d = policy.head[0].in_features
        self.value = nn.Sequential(nn.Linear(d, 256), nn.Tanh(), nn.Linear(256, 1))
        self.log_std = nn.Parameter(torch.log(torch.tensor(init_std, dtype=torch.float32)))

    def dist(self, x: torch.Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(self.policy.command(x), self.log_std.exp())


def reward_scorers(reward: str, world_model: str, road_gate: bool = False):
    """(a factory of one OnlineReward per env, provenance): the reward model read with the world model
    its features come from (refused, naming both hashes, if it was trained on another), gated by the
    road check with `road_gate`."""
    wm, wm_ckpt = load_world_model(world_model)
    model, ckpt = load_reward(reward, content_hash(wm_ckpt))
    stride = model_stride(wm.config.model_dt, DT)
    road = RoadCheck() if road_gate else None
    return (lambda: OnlineReward(model, wm, stride, road)), {"reward_sha256": ckpt["weights_sha256"],
                                                             "reward_world_model_sha256": content_hash(wm_ckpt)}


def step_rewards(config: RLConfig, learned: np.ndarray, sim: np.ndarray | None = None,
                 taken_over: np.ndarray | None = None, speed: np.ndarray | None = None) -> np.ndarray:
    """The reward PPO maximises for one env step: the simulator's with `oracle` (its -0.1 a frame is
    a time cost already), else the learned reward (with `speed_reference`, times the car's `speed` at
    the step's start over it) less `time_cost` x DT; less `takeover_cost` where the step ended its
    episode in a takeover."""
    if config.oracle:
        r = np.asarray(sim, np.float32)
    else:
        r = np.asarray(learned, np.float32)
        if config.speed_reference:
            if speed is None:
                raise ValueError("speed_reference is set: step_rewards needs the cars' speeds")
            r = r * np.maximum(np.asarray(speed, np.float32).reshape(r.shape), 0) / np.float32(config.speed_reference)
        r = r - np.float32(config.time_cost * DT)
    return r if taken_over is None else r - np.float32(config.takeover_cost) * np.asarray(taken_over, np.float32)


def taken_over(infos: dict, n: int) -> np.ndarray:
    """(n,) bool: the envs whose episode just ended in a takeover (SAME_STEP autoreset keeps the ended
    episode's info under final_info)."""
    final = infos.get("final_info", {})
    if "reason" not in final:
        return np.zeros(n, bool)
    return np.asarray(infos["_final_info"], bool) & (np.asarray(final["reason"], object) == "takeover")


@dataclass
class Drive:
    """One noiseless drive of a track by the policy."""
    score: float
    learned_return: float
    """The learned reward less the time cost, as in training (0 for the oracle arm)."""
    commands: np.ndarray
    """(T, 2) [steering, speed] the car got after each frame."""
    first_visit: np.ndarray
    """(N,) the frame after whose command each tile was first touched (-1: never)."""
    lap_complete: bool

    @property
    def failure(self) -> int | None:
        """The frame the lap was lost at: where the car first passed a tile it never touched (the lap
        can no longer end), else where it last touched a new tile (it left the road); None when it was
        still gaining tiles at the end (too slow: no one place to start before)."""
        visited = np.flatnonzero(self.first_visit >= 0)
        missed = np.flatnonzero(self.first_visit < 0)
        beyond = [self.first_visit[visited[visited > m]].min() for m in missed if (visited > m).any()]
        if beyond:
            return int(min(beyond)) + 1
        last = int(self.first_visit.max()) + 1
        return None if last >= len(self.commands) - 50 else last


def drive(config: RLConfig, trunk: FrozenTrunk, make_scorer, seed: int, steps: int) -> Drive:
    env = DriveByWireCarRacing([seed], steps)
    actor, scorer = BatchActor(trunk, 1), make_scorer() if make_scorer else None
    try:
        obs, info = env.reset(seed=seed)
        total, k, done, commands = 0.0, np.zeros(1, int), False, []
        first_visit = np.full(len(env.vehicle.visited_tiles()), -1)
        while not done:
            batch = {key: v[None] for key, v in obs.items()}
            command, _, _ = actor.act(batch["frame"], k * DT)
            learned = apply(actor, [scorer] if scorer else None, k, batch, command)
            obs, _, term, trunc, info = env.step(command[0])
            if not config.oracle:
                total += float(step_rewards(config, learned, speed=batch["speed"][:, 0])[0])
            commands.append(command[0])
            first_visit[(first_visit < 0) & env.vehicle.visited_tiles()] = k[0]
            k += 1
            done = term or trunc
    finally:
        env.close()
    return Drive(info["score"], total, np.stack(commands), first_visit, info["reason"] == "lap_complete")


def evaluate(config: RLConfig, trunk: FrozenTrunk, make_scorer) -> dict[str, float]:
    """The noiseless policy on the eval seeds: mean simulator score and mean learned return (less the
    time cost, as in training; 0 for the oracle arm, which has no learned reward)."""
    drives = [drive(config, trunk, make_scorer, seed, config.eval_steps) for seed in parse_seeds(config.eval_seeds)]
    return {"eval_score": float(np.mean([d.score for d in drives])),
            "eval_return": float(np.mean([d.learned_return for d in drives]))}


def start_points(config: RLConfig, trunk: FrozenTrunk, warmup: int, tracks: list[int]) -> dict[int, StartPoint]:
    """The start points of the start tracks among `tracks` (those this process drives): the policy's own
    drive of each (call before it learns), handed over within start_window frames before its failure
    there (Drive.failure)."""
    starts = {}
    for seed in sorted(set(parse_seeds(config.starts)) & set(tracks)) if config.starts else ():
        d = drive(config, trunk, None, seed, config.max_episode_steps)
        if d.lap_complete:
            raise ValueError(f"start track {seed}: the starting policy finishes the lap (score {d.score:.1f}); "
                             "start points are for tracks where it fails")
        failure = d.failure
        if failure is None:
            raise ValueError(f"start track {seed}: the starting policy misses no tile and is still gaining tiles at "
                             f"frame {len(d.commands)} (score {d.score:.1f}): too slow, with no one place to start "
                             "before; train on it from the start line (seeds)")
        first = max(warmup, failure - config.start_window[0])
        starts[seed] = StartPoint(d.commands, first, max(first, failure - config.start_window[1]))
        print(f"[photon] start track {seed}: score {d.score:.1f}, lap lost at frame {failure}, "
              f"hand-over in frames [{first}, {starts[seed].last}]", flush=True)
    return starts


def train(config: RLConfig) -> Path:
    """The run in this process, or in this process's place of a torchrun run (WORLD_SIZE > 1)."""
    return run_processes("cpu", lambda procs: fine_tune(config, procs)[0])


def fine_tune(config: RLConfig, procs: Processes) -> tuple[Path, Agent]:
    """Train (or resume) to total_steps; returns (best.pt, or last.pt when no eval improved, the agent).

    Distributed (torchrun, gloo): every rank steps its own `envs` envs on its own share of the training
    tracks, the update's gradients are averaged over the ranks (one all_reduce per minibatch, which
    also carries the loss, so a non-finite loss anywhere stops every rank), the rollout reward is the
    mean over all ranks (so all agree on a collapse), and rank 0 alone evaluates, logs and writes
    checkpoints while the others wait. All ranks start from rank 0's weights and stay identical."""
    torch.set_num_threads(config.threads)
    seed_everything(config.seed + procs.rank)  # each rank its own action noise and minibatch order
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    policy, start_ckpt = load_policy(config.policy)
    policy.requires_grad_(False)
    policy.head.requires_grad_(True)
    anchor = copy.deepcopy(policy.head)
    trunk = FrozenTrunk(policy)
    wm = policy.world_model.config
    warmup = wm.context_steps * model_stride(wm.model_dt, DT) + 1  # a whole context at the hand-over
    n, T, world = config.envs, config.rollout, procs.world
    seeds = parse_seeds(config.seeds)
    tracks = seeds[procs.rank::world] or seeds  # this process's share of the training tracks
    starts = _agreed(lambda: start_points(config, trunk, warmup, tracks), procs)
    agent = Agent(policy, config.init_std)
    params = [p for p in agent.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=config.lr, eps=1e-5)
    make_scorer, provenance = ((None, {}) if config.oracle else
                               reward_scorers(config.reward, config.reward_world_model, config.road_gate))
    provenance["start_policy_sha256"] = content_hash(start_ckpt)
    last, best_path = out / "last.pt", out / "best.pt"
    step, update, first_reward, low, best = 0, 0, None, 0, -math.inf
    if config.resume and last.exists():
        ck = load_policy_checkpoint(last, expected_config=policy.config)
        policy.load_state_dict(ck["model"])
        rl = ck["extra"]["rl"]
        agent.value.load_state_dict(rl["value"])
        agent.log_std.data.copy_(rl["log_std"])
        opt.load_state_dict(ck["optimizer"])
        step, update, first_reward, best = ck["step"], rl["update"], rl["first_reward"], rl["best"]
    if procs.distributed:
        for p in params:
            dist.broadcast(p.data, 0)
    envs = make_envs(n, tracks, config.max_episode_steps, starts=starts, warmup=warmup,
                     takeover=Takeover(config.takeover_frames) if config.takeover_frames else None)
    actor = BatchActor(trunk, n)
    scorers = [make_scorer() for _ in range(n)] if make_scorer else None
    log = RunLog(out, ["update", "env_steps", "reward_mean", "sim_reward_mean", "policy_loss", "value_loss",
                       "kl_anchor", "std_steering", "std_speed", "takeovers", "eval_score", "eval_return",
                       "steps_per_s", "elapsed_s"], fresh=step == 0) if procs.is_main else None
    obs, infos = envs.reset()
    k = np.zeros(n, int)
    for i, warm in handed_over(infos).items():
        k[i] = hand_over(actor, scorers, i, warm)
    bar = tqdm(total=config.total_steps, initial=step, disable=not (config.progress and procs.is_main), unit="step",
               mininterval=0.5)
    t0 = time.perf_counter()

    def save(path: Path, metrics: dict) -> None:
        save_policy(path, policy, opt, step=step, train_config=config.to_dict(), metrics=metrics, extra={
            **provenance, "rl": {"value": agent.value.state_dict(), "log_std": agent.log_std.detach().clone(),
                                 "update": update, "first_reward": first_reward, "best": best},
            "world_model_sha256": start_ckpt["extra"].get("world_model_sha256", ""), "world_size": world})

    def diverged(at: int, reason: str) -> TrainingDiverged:
        kept = f"{last} holds the last good interval" if last.exists() else "no checkpoint was written"
        return TrainingDiverged(f"update {at}: {reason}: stopping ({kept})")

    try:
        while step < config.total_steps:
            t_update = time.perf_counter()
            buf = {key: [] for key in ("x", "a", "logp", "r", "done", "v", "ready", "sim", "takeover")}
            for _ in range(T):
                command, ready, x = actor.act(obs["frame"], k * DT)
                xt = torch.from_numpy(x)
                with torch.no_grad():
                    d = agent.dist(xt)
                    a = d.sample()
                    logp, v = d.log_prob(a).sum(-1), agent.value(xt)[:, 0]
                # The sample is what PPO's ratio is about; the car gets it clipped to its range (no context
                # yet: the runtime's stop).
                sample = np.where(ready[:, None], a.numpy(), command)
                a = np.clip(sample, envs.single_action_space.low, envs.single_action_space.high)
                learned = apply(actor, scorers, k, obs, a)
                speed = obs["speed"][:, 0]
                obs, sim_r, term, trunc, infos = envs.step(a)
                done = term | trunc
                takeover = taken_over(infos, n)
                r = step_rewards(config, learned, sim_r, takeover, speed)
                for key, val in (("x", x), ("a", sample), ("logp", logp.numpy()), ("r", r * config.reward_scale),
                                 ("done", done), ("v", v.numpy()), ("ready", ready), ("sim", sim_r),
                                 ("takeover", takeover)):
                    buf[key].append(np.asarray(val))
                k += 1
                for i in np.flatnonzero(done):
                    k[i] = 0
                    actor.reset(i)
                    if scorers:
                        scorers[i].reset()
                for i, warm in handed_over(infos).items():
                    k[i] = hand_over(actor, scorers, i, warm)
                step += n * world
                bar.update(n * world)
            B = {key: np.stack(v) for key, v in buf.items()}  # (T, n, ...)
            adv = _gae(B, config)
            ret = adv + B["v"]
            mask = B["ready"].reshape(-1)
            x = torch.from_numpy(B["x"].reshape(-1, B["x"].shape[-1])[mask])
            a = torch.from_numpy(B["a"].reshape(-1, 2)[mask].astype(np.float32))
            old_logp = torch.from_numpy(B["logp"].reshape(-1)[mask])
            adv_t = torch.from_numpy(adv.reshape(-1)[mask].astype(np.float32))
            ret_t = torch.from_numpy(ret.reshape(-1)[mask].astype(np.float32))
            adv_t = (adv_t - adv_t.mean()) / (adv_t.std() + 1e-8)
            # Every rank takes the same number of optimizer steps (its samples in as many minibatches as
            # the rank with the fewest fills); a rollout without two whole contexts (the first 0.2 s of
            # episodes) on some rank has nothing to learn from.
            fewest = int(_all_reduce(torch.tensor([float(len(x))]), procs, dist.ReduceOp.MIN)[0])
            stats = []
            for _ in range(config.epochs if fewest > 1 else 0):
                for idx in torch.randperm(len(x)).tensor_split(math.ceil(fewest / config.minibatch)):
                    d = agent.dist(x[idx])
                    ratio = (d.log_prob(a[idx]).sum(-1) - old_logp[idx]).exp()
                    pg = -torch.min(ratio * adv_t[idx], ratio.clamp(1 - config.clip, 1 + config.clip) * adv_t[idx]).mean()
                    vl = 0.5 * (agent.value(x[idx])[:, 0] - ret_t[idx]).pow(2).mean()
                    with torch.no_grad():
                        mu0 = _anchor_mean(anchor, policy, x[idx])
                    kl = ((d.mean - mu0).pow(2) / (2 * d.stddev.pow(2))).sum(-1).mean()
                    loss = pg + config.value_coef * vl + config.kl * kl
                    opt.zero_grad()
                    loss.backward()
                    mean_loss = _average_gradients(params, loss, procs)
                    if not math.isfinite(mean_loss):
                        raise diverged(update + 1, f"the PPO loss is not finite ({mean_loss})")
                    nn.utils.clip_grad_norm_(params, 0.5)
                    opt.step()
                    stats.append((pg.item(), vl.item(), kl.item()))
            update += 1
            totals = _all_reduce(torch.tensor([B["r"][B["ready"]].sum(), B["ready"].sum(), B["sim"].sum(),
                                               B["sim"].size, time.perf_counter() - t0 >= config.time_limit_s,
                                               (B["takeover"] & B["ready"]).sum()], dtype=torch.float64), procs)
            out_of_time = bool(totals[4] > 0)
            reward_mean = float(totals[0] / totals[1]) if totals[1] > 0 else 0.0
            # Judged before the time cost, which would make a healthy run's reward negative and switch the
            # check off (its `first_reward > 0`), and before the takeovers' cost, which a run learning to
            # stay on the road pays less of as it goes (a collapse is of the reward for driving).
            charges = ((0.0 if config.oracle else config.time_cost * DT)
                       + (config.takeover_cost * float(totals[5] / totals[1]) if totals[1] > 0 else 0.0))
            judged = reward_mean + charges * config.reward_scale
            first_reward = judged if first_reward is None else first_reward
            low = low + 1 if first_reward > 0 and judged < config.collapse_fraction * first_reward else 0
            collapsed = low >= config.collapse_patience
            row = {"update": update, "env_steps": step, "reward_mean": reward_mean,
                   "sim_reward_mean": float(totals[2] / totals[3]), "policy_loss": _mean(stats, 0),
                   "value_loss": _mean(stats, 1), "kl_anchor": _mean(stats, 2),
                   "std_steering": float(agent.log_std[0].detach().exp()), "std_speed": float(agent.log_std[1].detach().exp()),
                   "takeovers": int(totals[5]),
                   "steps_per_s": n * T * world / (time.perf_counter() - t_update)}
            if procs.is_main:
                if update % config.eval_interval == 0 or step >= config.total_steps or collapsed or out_of_time:
                    row |= evaluate(config, trunk, make_scorer)
                    key = row["eval_score"] if config.oracle else row["eval_return"]
                    if not collapsed:
                        save(last, row)
                        if config.keep_evals:  # last.pt as just written, not serialised again
                            shutil.copyfile(last, out / f"update_{update:05d}.pt")
                        if key > best:
                            best = key
                            save(best_path, row)
                log.write(update, [f"{row.get(c, math.nan):.6g}" for c in log.columns[:-1]]
                          + [f"{time.perf_counter() - t0:.1f}"], row)
                bar.set_postfix(r=f"{reward_mean:.3f}", kl=f"{row['kl_anchor']:.3f}")
            if procs.distributed:
                dist.barrier()  # the others wait for rank 0's evaluation and checkpoints
            if out_of_time and not collapsed:
                print(f"[photon] time limit {config.time_limit_s:g} s reached at update {update} ({step} env steps)",
                      flush=True)
                break
            if collapsed:
                raise diverged(update, f"reward collapse: the rollout reward {judged:.4g} stayed below "
                               f"{config.collapse_fraction} x the first ({first_reward:.4g}) for {low} updates")
    finally:
        bar.close()
        if log is not None:
            log.close()
        envs.close()
    return (best_path if best_path.exists() else last), agent


def handed_over(infos: dict) -> dict[int, dict[str, np.ndarray]]:
    """The envs whose episode (just reset) starts at a start point -> the frames before its hand-over."""
    return {int(i): {key: v[i] for key, v in infos["warmup"].items()} for i in np.flatnonzero(infos.get("_warmup", ()))}


def _agreed(compute, procs: Processes):
    """compute(), or its ValueError raised on every rank when it fails on any (a rank left alone at the
    next collective would wait for the others forever)."""
    try:
        value, error = compute(), None
    except ValueError as exc:
        value, error = None, exc
    if _all_reduce(torch.tensor([float(error is not None)]), procs, dist.ReduceOp.MAX)[0] and error is None:
        error = ValueError("another process refused one of its start tracks (its message is in that process's log)")
    if error is not None:
        raise error
    return value


def _all_reduce(values: torch.Tensor, procs: Processes, op=dist.ReduceOp.SUM) -> torch.Tensor:
    """`values` reduced over the ranks (unchanged in a single process)."""
    if procs.distributed:
        dist.all_reduce(values, op)
    return values


def _average_gradients(params: list[nn.Parameter], loss: torch.Tensor, procs: Processes) -> float:
    """Average the gradients over the ranks, in one all_reduce that also carries the loss; returns the
    mean loss (not finite when it is not finite on any rank)."""
    if not procs.distributed:
        return loss.item()
    grads = [p.grad for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads] + [loss.detach().reshape(1)]) / procs.world
    dist.all_reduce(flat)
    for g, avg in zip(grads, flat[:-1].split([g.numel() for g in grads])):
        g.copy_(avg.view_as(g))
    return flat[-1].item()


def _mean(stats: list[tuple[float, ...]], i: int) -> float:
    return float(np.mean([s[i] for s in stats])) if stats else math.nan


def _anchor_mean(anchor: nn.Module, policy, x: torch.Tensor) -> torch.Tensor:
    """The starting policy's command for the same head input."""
    head, policy.head = policy.head, anchor
    try:
        return policy.command(x)
    finally:
        policy.head = head


def _gae(B: dict, config: RLConfig) -> np.ndarray:
    """Generalised advantage estimates (T, n); the value after the rollout's last step is taken as
    its own (bootstrapping from the last value), an episode end cuts the sum."""
    r, v, done = B["r"], B["v"], B["done"].astype(np.float32)
    adv = np.zeros_like(r)
    last = np.zeros(r.shape[1], np.float32)
    for t in reversed(range(len(r))):
        next_v = v[t + 1] if t + 1 < len(r) else v[t]
        delta = r[t] + config.gamma * next_v * (1 - done[t]) - v[t]
        last = delta + config.gamma * config.gae_lambda * (1 - done[t]) * last
        adv[t] = last
    return adv

