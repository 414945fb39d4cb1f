"""Shared fixtures: real nodes in real processes, a probe node on the same DDS domain."""
from __future__ import annotations

import dataclasses
import os
import random
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import pytest

# One DDS domain per test session, discovery on this machine only: parallel runs and other
# ROS graphs on the host cannot leak into the tests. Set before rclpy initialises.
# PHOTON_TEST_DOMAIN_ID pins it (several checkouts testing at once on one machine). Linux: ids
# above 101 put DDS ports into the kernel's ephemeral range, where they can collide; the two-worker
# eval tests use this id and the next, so the draw stops at 100.
os.environ["ROS_DOMAIN_ID"] = os.environ.get("PHOTON_TEST_DOMAIN_ID") or str(random.Random(os.getpid()).randint(1, 100))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

import rclpy  # noqa: E402
import rclpy.executors  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.signals import SignalHandlerOptions  # noqa: E402

from photon_policy.launcher import start_node  # noqa: E402
from photon_policy.profiles import load_profile, node_command  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """Tiers by directory: test/unit is `unit` (no DDS), test/ros is `ros` (real nodes over DDS)."""
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in ("unit", "ros"):
            item.add_marker(getattr(pytest.mark, tier))


def wait_until(condition: Callable[[], bool], timeout: float, what: str | Callable[[], str],
               poll_s: float = 0.05) -> None:
    """Outside ROS (processes, files, pipes): poll `condition` until it holds, or AssertionError
    naming `what` (a function is called then, to say what the state was) after `timeout` s."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")
        time.sleep(poll_s)


class Probe:
    """A test's own node: subscribe, publish, and wait on conditions with deadlines."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = Node(f"probe_{os.getpid()}", context=self.context)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.received: dict[str, list[Any]] = defaultdict(list)

    def subscribe(self, msg_type: type, topic: str, qos: Any = 10) -> list[Any]:
        box = self.received[topic]
        self.node.create_subscription(msg_type, topic, box.append, qos)
        return box

    def publisher(self, msg_type: type, topic: str, qos: Any = 10):
        return self.node.create_publisher(msg_type, topic, qos)

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=min(0.05, max(end - time.monotonic(), 0.0)))

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str | Callable[[], str]) -> None:
        """`what` may be a function: it is called on a timeout, to say what the state was then."""
        end = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > end:
                raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture
def probe():
    p = Probe()
    yield p
    p.close()


class NodeRunner:
    """Starts nodes of a profile as real processes; stops them with SIGINT like a Ctrl-C."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, profile: str, node: str, remap: dict[str, str] | None = None, **params: Any) -> subprocess.Popen:
        spec = load_profile(profile).node(node)
        # ROS applies the first matching remap rule, so the test's remaps replace the profile's.
        spec = dataclasses.replace(spec, remappings=tuple({**dict(spec.remappings), **(remap or {})}.items()))
        argv = node_command(spec, params)
        log = open(self.log_dir / f"{node}.log", "wb")
        proc = start_node(argv, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((node, proc))
        return proc

    def log(self, node: str) -> str:
        return (self.log_dir / f"{node}.log").read_text(errors="replace")

    def interrupt(self, proc: subprocess.Popen, timeout: float = 10.0) -> int:
        proc.send_signal(signal.SIGINT)
        return proc.wait(timeout=timeout)

    def stop_all(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for _, proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def nodes(tmp_path):
    runner = NodeRunner(tmp_path)
    yield runner
    runner.stop_all()


def tiny_world_model(root: Path, image_size: int = 32) -> Path:
    """A world model small enough to train and serve in seconds (untrained, seeded), saved under root."""
    import torch
    from world_model_node.checkpoint import save_checkpoint
    from world_model_node.model import WorldModel, WorldModelConfig
    torch.manual_seed(0)
    wm = WorldModel(WorldModelConfig(image_size=image_size, enc_channels=(8, 8), dec_channels=(8, 8),
                                     latent_channels=4, embed_dim=16, hidden=16, refine_channels=8, action_embed=8))
    return save_checkpoint(root / "wm.pt", wm)
