"""The policy driving the simulated car in this process, no ROS: the baseline that `photon eval
--driver policy` (the same policy through the ROS loop) is benchmarked against (benchmarks/eval_speed.py).

It runs what the lockstep loop runs, in the same order: the simulator's session (SimulationSession,
the drive-by-wire from config/simulator.yaml), the policy node's per-frame code (FrameCommander
over the backend, runtime and safety layer from config/policy.yaml, warmed up as the node does),
the same stamps (the simulator's tick x DT, through the header stamp's sec/nanosec, with its
1 s gap between episodes), one runtime across the seeds (as the node keeps one) and the final frame
of an episode computed too (the node answers it; the simulator ignores the answer). So the scores
equal those through ROS, seed for seed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from photon_policy.config_files import config_from_file
from photon_policy.expert.in_process import EpisodeResult
from photon_policy.paths import config_dir
from photon_policy.policy.export import load_compute
from photon_policy.policy.frame_commands import FrameCommander, LastCommand
from photon_policy.policy.node import PolicyNodeParams, source
from photon_policy.policy.runtime import runtime_for, warm_up
from photon_policy.policy.safety import SafetyConfig, SafetyLayer
from photon_policy.ros.camera import to_model_frame
from photon_policy.ros.stamps import seconds_from_stamp, stamp_from_seconds
from photon_policy.sim.carracing import DT, MAX_STEPS
from photon_policy.sim.drive_by_wire import DriveByWireConfig
from photon_policy.sim.session import SimulationSession


@dataclass
class InProcessRun:
    episodes: list[EpisodeResult]
    wall_time_s: float
    """From the first frame to the last episode's end (start-up and warm-up excluded, as in the ROS figure)."""
    compute_s: list[float] = field(default_factory=list)
    """Seconds in the model, per frame."""

    @property
    def steps(self) -> int:
        return sum(e.steps for e in self.episodes)

    @property
    def steps_per_second(self) -> float:
        return self.steps / max(self.wall_time_s, 1e-9)


def shipped_configs(overrides: dict | None = None) -> tuple[PolicyNodeParams, SafetyConfig, DriveByWireConfig]:
    """The policy node's and the simulator's drive-by-wire configs as their parameter files set
    them; `overrides`: policy parameters to change (e.g. {"export": "onnx"})."""
    directory = config_dir()
    params = config_from_file(PolicyNodeParams, directory / "policy.yaml", "policy")
    for name, value in (overrides or {}).items():
        setattr(params, name, value)
    params.__post_init__()
    return (params, config_from_file(SafetyConfig, directory / "policy.yaml", "policy"),
            config_from_file(DriveByWireConfig, directory / "simulator.yaml", "simulator", prefix="drive_by_wire."))


def drive(seeds: list[int], max_steps: int = MAX_STEPS, policy_overrides: dict | None = None) -> InProcessRun:
    """Drive `seeds` in order with the policy, as the lockstep ROS loop does, in this process."""
    params, safety_config, dbw_config = shipped_configs(policy_overrides)
    torch.set_num_threads(params.threads)
    compute = load_compute(source(params), params.export, params.device, params.threads)
    runtime = runtime_for(compute, params.device, params.input_timeout)
    size = compute.config.wm.image_size
    warm_up(compute, runtime.steps, runtime.dt, runtime.latent_shape, size, runtime.device)
    commander = FrameCommander(runtime, SafetyLayer(safety_config), autonomous=True)
    session = SimulationSession(seeds, repeat=False, max_steps=max_steps, dbw_config=dbw_config)
    run = InProcessRun([], 0.0)
    last: LastCommand | None = None
    try:
        session.start_next_episode()
        started = episode_started = time.perf_counter()
        while True:
            stamp = seconds_from_stamp(stamp_from_seconds(session.tick * DT))
            state = session.state
            runtime.add_imu(stamp, float(state.ax), float(state.ay), float(state.yaw_rate))
            runtime.add_odom(stamp, float(state.vx))
            out = commander.command(to_model_frame(session.frame, size), stamp, last)
            if out.result.command is not None:
                run.compute_s.append(out.result.compute_s)
            last = LastCommand(stamp, out.steering, out.speed)
            if session.episode_done:
                r = session.last_result
                run.episodes.append(EpisodeResult(session.seed, r.score, r.step, r.reason,
                                                  time.perf_counter() - episode_started))
                if not session.start_next_episode():
                    break
                episode_started = time.perf_counter()
                continue
            now = time.monotonic()
            session.accept_command(out.steering, out.speed, now, stamp)
            session.step(now, None)
        run.wall_time_s = time.perf_counter() - started
    finally:
        session.vehicle.close()
    return run
