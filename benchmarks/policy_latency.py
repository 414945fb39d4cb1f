"""Policy latency: camera image arrival -> command on /drive, through real DDS, beside the in-process
per-frame compute of each backend (eager, TorchScript, ONNX Runtime).

A probe node publishes camera frames (96x96 rgb8, from an expert drive), IMU and odometry at
50 Hz, each frame with a unique stamp, to a policy_node process (the sim-policy profile's
node, wall clock); every command on /drive is matched to its frame by header stamp. Three
figures, from the outside in:
  roundtrip       probe publishes the image -> the probe's callback for its /drive: includes the
                  probe's own executor wake-up (rclpy's SingleThreadedExecutor: the EventsExecutor
                  of rclpy 9.1 fails on callbacks that take MessageInfo);
  image_to_drive  probe publishes the image -> rmw hands the /drive command to the probe
                  (MessageInfo.received_timestamp, system clock): through DDS, the node and DDS
                  back, without the probe's executor;
  node callback   the node's own: its image callback -> its command published (/diagnostics).
Prints JSON. Targets: p99 <= 10 ms (issue 4); with `--export onnx` p99 <= 5 ms (issue 13).

    .venv/bin/python benchmarks/policy_latency.py [--ckpt RUN|FILE] [--frames 2000] [--export torchscript]

Without --ckpt it uses the shipped models/policy.pt.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

WARMUP = 50
"""Frames answered before timing starts (the node's first frames build its context)."""


def stats(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"n": int(a.size), "p50_ms": round(float(np.percentile(a, 50)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3), "mean_ms": round(float(a.mean()), 3),
            "max_ms": round(float(a.max()), 3)}


BACKENDS = ("eager", "torchscript", "onnx")


def in_process(ckpt: Path, frames: np.ndarray, n: int, threads: int, kinds: tuple[str, ...] = BACKENDS) -> dict:
    """Per-frame time of PolicyRuntime.push (what the node's callback runs), per backend, side by side."""
    from photon_policy.policy.export import load_compute
    from photon_policy.policy.runtime import runtime_for

    torch.set_num_threads(threads)
    out = {}
    for kind in kinds:
        compute = load_compute(ckpt, kind, threads=threads)
        runtime = runtime_for(compute)
        ms = []
        for k in range(n + WARMUP):
            runtime.add_odom(0.02 * k, 30.0)
            runtime.add_imu(0.02 * k, 0.0, 0.0, 0.0)
            started = time.perf_counter()
            runtime.push(frames[k % len(frames)], 0.02 * (k + 1))
            if k >= WARMUP:
                ms.append((time.perf_counter() - started) * 1e3)
        out[kind] = stats(ms)
    return out


def through_dds(ckpt: Path, export: str, frames: np.ndarray, n: int, rate_hz: float, log: Path) -> dict:
    import rclpy
    import rclpy.executors
    from ackermann_msgs.msg import AckermannDriveStamped
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import Odometry
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import Image, Imu

    from photon_policy.profiles import load_profile, node_command
    from photon_policy.ros.images import image_message
    from photon_policy.ros.stamps import stamp_from_seconds

    spec = load_profile("sim-policy").node("policy")
    argv = node_command(spec, {"checkpoint": str(ckpt), "export": export, "use_sim_time": False})
    proc = subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = Node("policy_latency_probe", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    sent: dict[tuple[int, int], float] = {}
    received: dict[tuple[int, int], float] = {}
    sent_ns: dict[tuple[int, int], int] = {}
    received_ns: dict[tuple[int, int], int] = {}
    diagnostics: dict[str, str] = {}

    def on_drive(msg: AckermannDriveStamped, info) -> None:
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        if key in sent and key not in received:
            received[key] = time.perf_counter()
            received_ns[key] = info["received_timestamp"]

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith(": policy"):
                diagnostics.update({kv.key: kv.value for kv in status.values})

    node.create_subscription(AckermannDriveStamped, "/drive", on_drive, QoSProfile(depth=100))
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, QoSProfile(depth=10))
    image_pub = node.create_publisher(Image, "/camera/image_raw", qos_profile_sensor_data)
    imu_pub = node.create_publisher(Imu, "/imu", qos_profile_sensor_data)
    odom_pub = node.create_publisher(Odometry, "/odom", QoSProfile(depth=10))
    try:
        deadline = time.monotonic() + 60
        while not (image_pub.get_subscription_count() and node.count_publishers("/drive")):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"policy_node did not come up (exit {proc.poll()}): see {log}")
            executor.spin_once(timeout_sec=0.1)
        period = 1.0 / rate_hz
        next_at = time.perf_counter()
        order = []
        for k in range(n + WARMUP):
            stamp = stamp_from_seconds(1000.0 + 0.02 * k)
            imu = Imu()
            imu.header.stamp = stamp
            odom = Odometry()
            odom.header.stamp = stamp
            odom.twist.twist.linear.x = 30.0
            imu_pub.publish(imu)
            odom_pub.publish(odom)
            image = image_message(frames[k % len(frames)], stamp, "camera_optical_frame")
            key = (stamp.sec, stamp.nanosec)
            order.append(key)
            sent_ns[key] = time.time_ns()
            sent[key] = time.perf_counter()
            image_pub.publish(image)
            next_at += period
            while (wait := next_at - time.perf_counter()) > 0:
                executor.spin_once(timeout_sec=wait)
        end = time.monotonic() + 2.0
        while time.monotonic() < end and len(received) < len(sent):
            executor.spin_once(timeout_sec=0.05)
        end = time.monotonic() + 1.5  # one more diagnostics report covering every frame
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
    finally:
        proc.send_signal(2)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    timed = order[WARMUP:]
    ms = [(received[k] - sent[k]) * 1e3 for k in timed if k in received]
    through = [(received_ns[k] - sent_ns[k]) * 1e-6 for k in timed if received_ns.get(k, 0) > 0]
    return {"roundtrip": stats(ms), "image_to_drive": stats(through) if through else None,
            "unanswered": sum(k not in received for k in timed),
            "node_callback_ms_p50": float(diagnostics.get("callback_ms_p50", "nan")),
            "node_callback_ms_p99": float(diagnostics.get("callback_ms_p99", "nan")),
            "node_inference_ms_p99": float(diagnostics.get("inference_ms_p99", "nan")),
            "node_dropped_frames": int(diagnostics.get("dropped_frames", "0"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, help="policy checkpoint or run directory (default: models/policy.pt)")
    parser.add_argument("--frames", type=int, default=2000, help="timed frames (after 50 warm-up frames)")
    parser.add_argument("--rate", type=float, default=50.0, help="camera rate, Hz")
    parser.add_argument("--export", default="torchscript",
                        help="the node's `export` parameter: eager | torchscript | onnx | FILE")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in process (the node's default: 1)")
    args = parser.parse_args()
    from photon_policy.expert.in_process import drive_frames
    from photon_policy.policy.cli import resolve_checkpoint

    tmp = Path(tempfile.mkdtemp(prefix="photon-policy-latency-"))
    ckpt = resolve_checkpoint(args.ckpt)
    frames, _ = drive_frames(seed=1234, steps=250)
    report = {"benchmark": "policy_latency", "checkpoint": str(ckpt), "cpus": os.cpu_count(),
              "camera_rate_hz": args.rate, "frames": args.frames, "node_export": args.export,
              "image_to_drive_through_dds": through_dds(ckpt, args.export, frames, args.frames, args.rate,
                                                        tmp / "policy_node.log"),
              "in_process_per_frame": in_process(ckpt, frames, min(args.frames, 1000), args.threads)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
