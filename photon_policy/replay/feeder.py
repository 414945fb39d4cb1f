"""Feeds a suite's bag to the real nodes, started as processes from their profiles, in lockstep.

Frame k is published (after the messages stamped up to it, and /clock at its stamp: the nodes run
on sim time, as in simulation) only once every node has answered frame k - 1, each answer stamped
with the frame's stamp; so what the nodes compute does not depend on how loaded the machine is.
The inputs sent before each frame are followed by a call to each node's own parameter service:
rclpy's executor serves a ready subscription before a ready service, so the reply says the node
has taken what was sent before it, the previous frame included. So a command is never taken after
the frame it came with (a node serves its camera subscription first), and frames a node does not
answer (the world model between its predictions) never pile up in its 5-deep sensor-data queue. Before the first frame the feeder waits for discovery both ways: each node's first diagnostics
(its writers know our readers), its answer publishers, and every subscription the graph lists
matched by our publishers (a volatile writer never sends what it published before it matched).
Every wait has a deadline; a node that exits is reported with the end of its log (LockstepRun).
"""
from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.duration import Duration
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rcl_interfaces.srv import GetParameters
from rosgraph_msgs.msg import Clock

from photon_policy.bags.recorder_node import message_class
from photon_policy.launcher import ProfileProcesses
from photon_policy.lockstep import LockstepRun, RunError
from photon_policy.profiles import Profile, load_profile
from photon_policy.replay.fields import flatten
from photon_policy.replay.plan import FeedPlan
from photon_policy.replay.suites import ReplayNode, Suite
from photon_policy.ros.stamps import stamp_from_seconds

QOS = QoSProfile(depth=1000)  # reliable, volatile: matches reliable and best-effort readers alike


@dataclass
class NodeResult:
    outputs: dict[str, dict[str, Any]]          # topic -> {"type", "messages": [flat record]}
    latencies_s: list[float]                    # per answered frame: frame sent -> last answer in
    diagnostics: dict[str, str]                 # the node's last /diagnostics values


@dataclass
class ReplayRun:
    nodes: dict[str, NodeResult]
    frames: int
    wall_s: float
    startup_s: float                            # node start to discovery done
    log_dir: Path
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Feeder(Node):
    """The replay's own node: publishes the bag, records the answers and the nodes' diagnostics."""

    def __init__(self, context: rclpy.Context, plan: FeedPlan, suite: Suite) -> None:
        super().__init__(f"replay_feeder_{os.getpid()}", context=context)
        self.nodes = suite.nodes
        self.pubs = {topic: self.create_publisher(message_class(t), topic, QOS) for topic, t in plan.types.items()}
        self.frame_pub = self.pubs[suite.frames]
        self.clock_pub = self.create_publisher(Clock, "/clock", QOS)
        self.received: dict[str, list[Any]] = defaultdict(list)
        self.types: dict[str, str] = {}
        self.arrived: dict[str, dict[int, float]] = defaultdict(dict)  # topic -> stamp ns -> first arrival
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.confirmed: set[str] = set()
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, QOS)
        self.barriers = {n.name: self.create_client(GetParameters, f"/{n.name}/get_parameters") for n in self.nodes}

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            name = status.name.partition(":")[0]
            self.diagnostics[name] = {kv.key: kv.value for kv in status.values}

    def _on_output(self, topic: str, msg: Any) -> None:
        self.received[topic].append(msg)
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self.arrived[topic].setdefault(stamp, time.monotonic())

    def _subscribe_outputs(self) -> bool:
        """Subscribe each answer topic once its publisher is in the graph (its type from there)."""
        for node in self.nodes:
            for topic in node.answer:
                if topic in self.types:
                    continue
                infos = [i for i in self.get_publishers_info_by_topic(topic) if i.node_name == node.name]
                if not infos:
                    return False
                self.types[topic] = infos[0].topic_type
                self.create_subscription(message_class(infos[0].topic_type), topic,
                                         lambda msg, t=topic: self._on_output(t, msg), QOS)
        return True

    def discovered(self) -> bool:
        if not all(n.name in self.diagnostics for n in self.nodes) or not self._subscribe_outputs():
            return False
        if not all(client.service_is_ready() for client in self.barriers.values()):
            return False
        # Every reader the graph lists is matched by our writer (at least the frames' one).
        return all(p.get_subscription_count() >= max(self.count_subscribers(p.topic_name), p is self.frame_pub)
                   for p in [*self.pubs.values(), self.clock_pub])

    def discovery_state(self) -> str:
        return (f"; diagnostics from {sorted(self.diagnostics)}, answer topics seen {sorted(self.types)}, "
                "our publishers matched " + ", ".join(f"{p.topic_name}: {p.get_subscription_count()}/"
                                                     f"{self.count_subscribers(p.topic_name)}"
                                                     for p in [*self.pubs.values(), self.clock_pub]))

    def publish_inputs(self, before: list[tuple[str, bytes]], timeout_s: float) -> None:
        for topic, data in before:
            self.pubs[topic].publish(data)
        for topic in {t for t, _ in before} - self.confirmed:
            self._confirm(topic, timeout_s)

    def _confirm(self, topic: str, timeout_s: float) -> None:
        """Discovery the other way, once per topic: a node's reader may match our writer a moment after
        our writer matched it, and the first commands would then be late or lost. A reliable reader
        acknowledges only what it holds, so wait for that (a heartbeat period, about a second)."""
        self.confirmed.add(topic)
        readers = self.get_subscriptions_info_by_topic(topic)
        if readers and all(r.qos_profile.reliability == ReliabilityPolicy.RELIABLE for r in readers):
            if not self.pubs[topic].wait_for_all_acked(Duration(seconds=timeout_s)):
                raise RunError(f"the readers of {topic} ({', '.join(r.node_name for r in readers)}) did not "
                               f"acknowledge its first message within {timeout_s:.0f} s")

    def publish_frame(self, stamp_ns: int, frame: bytes) -> float:
        clock = Clock()
        clock.clock = stamp_from_seconds(stamp_ns * 1e-9)
        self.clock_pub.publish(clock)
        self.frame_pub.publish(frame)
        return time.monotonic()

    def barrier(self, node: ReplayNode):
        """A call the node serves only after the frames already waiting for it (see the module doc)."""
        return self.barriers[node.name].call_async(GetParameters.Request(names=["use_sim_time"]))

    def answered(self, node: ReplayNode, stamps: list[int]) -> bool:
        return all(s in self.arrived[t] for t in node.answer for s in stamps)

    def answer_time(self, node: ReplayNode, stamps: list[int]) -> float:
        return max(self.arrived[t][s] for t in node.answer for s in stamps)

    def outputs(self, node: ReplayNode) -> dict[str, dict[str, Any]]:
        return {t: {"type": self.types[t], "messages": [flatten(m, self.types[t]) for m in self.received[t]]}
                for t in node.answer}


def replay_profile(suite: Suite) -> Profile:
    """The suite's nodes, each as its profile runs it."""
    specs = tuple(load_profile(n.profile).node(n.name) for n in suite.nodes)
    return Profile(f"replay-{suite.name}", f"replay of {suite.bag.name}", specs)


def feed(suite: Suite, plan: FeedPlan, expected: dict[str, dict[int, list[int]]], log_dir: Path,
         discovery_timeout_s: float = 120.0, answer_timeout_s: float = 20.0,
         on_frame: Callable[[int, int, ProfileProcesses], None] | None = None) -> ReplayRun:
    """Run the suite's nodes and feed them `plan`; `expected[node][k]` are the stamps (ns) the node
    answers after frame k. RunError (photon_policy.lockstep) on a crash or a deadline."""
    started = time.monotonic()
    overrides = {n.name: dict(n.parameters) for n in suite.nodes}
    if "shadow" in overrides:  # its clips go with the logs, never into the working directory
        overrides["shadow"].setdefault("output_dir", str(log_dir / "shadow_clips"))
    processes = ProfileProcesses(replay_profile(suite), overrides, log_dir=log_dir)
    latencies: dict[str, list[float]] = {n.name: [] for n in suite.nodes}
    with LockstepRun(lambda ctx: Feeder(ctx, plan, suite), log_dir) as run:
        feeder: Feeder = run.monitor
        run.start(processes)
        run.spin_until(feeder.discovered, discovery_timeout_s,
                       f"the nodes {', '.join(n.name for n in suite.nodes)} to start and match the replay",
                       detail=feeder.discovery_state)
        startup_s = time.monotonic() - started
        for k, step in enumerate(plan.steps):
            inputs_sent = time.monotonic()
            feeder.publish_inputs(step.before, answer_timeout_s)
            # One call per node, served after frame k-1 (which it may not have answered) and these inputs.
            take(run, feeder, f"the nodes to take frame {k - 1} and the inputs before frame {k}", answer_timeout_s)
            sent = feeder.publish_frame(step.stamp_ns, step.frame)
            waiting = [(n, expected[n.name][k]) for n in suite.nodes if expected[n.name].get(k)]

            def detail() -> str:
                missing = [f"{n.name} on {n.answer}" for n, s in waiting if not feeder.answered(n, s)]
                return (f"; still waiting for {', '.join(missing)}; the nodes' last diagnostics: "
                        f"{ {n.name: feeder.diagnostics.get(n.name) for n in suite.nodes} }")
            run.spin_until(lambda: all(feeder.answered(n, s) for n, s in waiting), answer_timeout_s,
                           f"the answers to frame {k} (stamp {step.stamp_ns * 1e-9:.3f} s)", detail=detail)
            for n, stamps in waiting:  # a node that answers an input is timed from the input
                latencies[n.name].append(feeder.answer_time(n, stamps) - (inputs_sent if n.fed_topic else sent))
            if on_frame is not None:
                on_frame(k, len(plan.steps), processes)
        take(run, feeder, "the nodes to take the last frame", answer_timeout_s)
        results = {n.name: NodeResult(feeder.outputs(n), latencies[n.name], feeder.diagnostics.get(n.name, {}))
                   for n in suite.nodes}
    return ReplayRun(results, len(plan.steps), time.monotonic() - started, startup_s, log_dir, plan.skipped,
                     plan.warnings)


def take(run: LockstepRun, feeder: Feeder, what: str, timeout_s: float) -> None:
    """Wait until every node has served a parameter-service call made now (see the module doc)."""
    calls = [feeder.barrier(n) for n in feeder.nodes]
    run.spin_until(lambda: all(c.done() for c in calls), timeout_s, what)


def percentiles_ms(latencies_s: list[float]) -> tuple[float, float]:
    if not latencies_s:
        return float("nan"), float("nan")
    ms = np.asarray(latencies_s) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
