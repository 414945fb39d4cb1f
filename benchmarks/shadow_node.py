"""Shadow node: pairing rate (lockstep and real time), CPU and memory. Prints JSON.

  lockstep   `photon up sim-shadow` with the simulator in lockstep (the profile as shipped: nothing
             waits for the policy) for --seconds; the shadow node's own diagnostics give the share
             of policy commands paired. Target >= 99 %.
  realtime   the same with the simulator at 50 Hz (camera frames at 50 Hz). Target >= 95 %; the
             shadow node's CPU over the run (share of one core, from /proc). Target < 10 %.
  soak       the shadow node alone, fed at 50 Hz by this process (96x96 camera, IMU, odometry,
             TF, both commands, a 0.5 s divergence every 10 s so clips are written) for
             --soak-seconds; RSS after the first minute and at the end. Target < 5 % growth.

    .venv/bin/python benchmarks/shadow_node.py --modes lockstep,realtime,soak --seconds 60 --soak-seconds 1200

The shadow node adds no command latency by construction: it only subscribes to the commands
(nothing on the control path waits for it); the graph test in test/ros/test_shadow_node.py
checks that it publishes no command.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rclpy
import rclpy.executors
from ackermann_msgs.msg import AckermannDriveStamped
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TransformStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image, Imu
from tf2_msgs.msg import TFMessage

from photon_policy.launcher import start_node
from photon_policy.profiles import load_profile, node_command
from photon_policy.ros.images import image_message
from photon_policy.ros.stamps import stamp_from_seconds

TICKS = os.sysconf("SC_CLK_TCK")


class Watcher:
    """This process's node: the shadow node's diagnostics, and (soak) the 50 Hz feed."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = Node(f"shadow_bench_{os.getpid()}", context=self.context)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.values: dict[str, str] = {}
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 100)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == "shadow: shadow":
                self.values = {kv.key: kv.value for kv in status.values}

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.02)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def shadow_pid(parent: int) -> int:
    """The shadow node among `photon up`'s children."""
    for _ in range(100):
        for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
            if "photon_policy.shadow.node" in Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace"):
                return int(child)
        time.sleep(0.1)
    raise RuntimeError("no shadow node among photon up's children")


def profile_run(mode: str, seconds: float, out: Path) -> dict:
    """sim-shadow under `photon up` for `seconds` after the first pair; pairing and the shadow node's CPU."""
    argv = [sys.executable, "-m", "photon_policy.cli", "up", "sim-shadow", "--set", f"simulator.mode={mode}",
            "--set", "simulator.seeds=2000-2099", "--set", f"shadow.output_dir={out / mode}"]
    log = open(out / f"{mode}.log", "wb")
    up = start_node(argv, stdout=log, stderr=subprocess.STDOUT)
    watcher = Watcher()
    try:
        pid = shadow_pid(up.pid)
        deadline = time.monotonic() + 180
        while int(watcher.values.get("pairs", "0")) == 0:
            if time.monotonic() > deadline or up.poll() is not None:
                raise RuntimeError(f"{mode}: no pairs (log {out / f'{mode}.log'})")
            watcher.spin_for(0.2)
        cpu0, t0, start = cpu_seconds(pid), time.monotonic(), dict(watcher.values)
        watcher.spin_for(seconds)
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        watcher.spin_for(1.2)  # the next diagnostics: counts as of the end of the window
        end = watcher.values
        commands = int(end["policy_commands"]) - int(start["policy_commands"])
        pairs = int(end["pairs"]) - int(start["pairs"])
        return {"seconds": round(t1 - t0, 1), "policy_commands": commands, "pairs": pairs,
                "pairing_rate": round(pairs / commands, 5) if commands else None,
                "unpaired": {k: int(v) for k, v in end.items() if k.startswith(("unpaired_", "dropped_"))},
                "camera_hz": round((int(end["camera_frames"]) - int(start["camera_frames"])) / (t1 - t0), 1),
                "events": int(end["events"]), "clips_written": int(end["clips_written"]),
                "shadow_cpu_percent_of_one_core": round(100.0 * (cpu1 - cpu0) / (t1 - t0), 2),
                "shadow_rss_mib": round(rss_mib(pid), 1)}
    finally:
        watcher.close()
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()


def soak(seconds: float, out: Path) -> dict:
    """The shadow node alone at 50 Hz from this process: CPU and memory over `seconds`."""
    spec = load_profile("sim-shadow").node("shadow")
    argv = node_command(spec, {"use_sim_time": False, "output_dir": str(out / "soak")})
    proc = start_node(argv, stdout=open(out / "soak.log", "wb"), stderr=subprocess.STDOUT)
    w = Watcher()
    n = w.node
    pubs = {"camera": n.create_publisher(Image, "/camera/image_raw", qos_profile_sensor_data),
            "imu": n.create_publisher(Imu, "/imu", qos_profile_sensor_data),
            "odom": n.create_publisher(Odometry, "/odom", QoSProfile(depth=10)),
            "tf": n.create_publisher(TFMessage, "/tf", QoSProfile(depth=10)),
            "driver": n.create_publisher(AckermannDriveStamped, "/teleop", QoSProfile(depth=100)),
            "policy": n.create_publisher(AckermannDriveStamped, "/policy/drive", QoSProfile(depth=100))}
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (96, 96, 3), dtype=np.uint8) for _ in range(16)]
    samples = []
    try:
        while pubs["camera"].get_subscription_count() == 0 or pubs["policy"].get_subscription_count() == 0:
            w.spin_for(0.1)
        t_start, k, cpu0, cpu_at_60 = time.monotonic(), 0, cpu_seconds(proc.pid), None
        while (now := time.monotonic()) - t_start < seconds:
            t = 1000.0 + 0.02 * k
            stamp = stamp_from_seconds(t)
            pubs["camera"].publish(image_message(frames[k % 16], stamp, "camera_optical_frame"))
            imu, odom, tf = Imu(), Odometry(), TFMessage(transforms=[TransformStamped()])
            imu.header.stamp = odom.header.stamp = tf.transforms[0].header.stamp = stamp
            odom.twist.twist.linear.x = 30.0
            for key, msg in (("imu", imu), ("odom", odom), ("tf", tf)):
                pubs[key].publish(msg)
            diverging = (k % 500) >= 475  # the last 0.5 s of every 10 s
            for key, steering in (("driver", 0.0), ("policy", 0.3 if diverging else 0.0)):
                cmd = AckermannDriveStamped()
                cmd.header.stamp = stamp
                cmd.drive.steering_angle, cmd.drive.speed = steering, 30.0
                pubs[key].publish(cmd)
            k += 1
            if k % 500 == 0:
                samples.append((round(now - t_start, 1), round(rss_mib(proc.pid), 2)))
            if cpu_at_60 is None and now - t_start >= 60.0:
                cpu_at_60 = (cpu_seconds(proc.pid), now)
            w.spin_for(max(t_start + 0.02 * k - time.monotonic(), 0.0))
        cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
        w.spin_for(1.2)
        after_minute = [rss for t, rss in samples if t >= 60.0]
        base = after_minute[0] if after_minute else samples[0][1]
        return {"seconds": round(t1 - t_start, 1), "frames": k, "feed_hz": round(k / (t1 - t_start), 1),
                "shadow_cpu_percent_of_one_core": round(100.0 * (cpu1 - cpu0) / (t1 - t_start), 2),
                "rss_mib_after_first_minute": base, "rss_mib_end": samples[-1][1],
                "rss_growth_after_first_minute_percent": round(100.0 * (samples[-1][1] - base) / base, 2),
                "rss_samples_every_10s": samples, "pairing_rate": w.values.get("pairing_rate"),
                "events": w.values.get("events"), "clips_written": w.values.get("clips_written"),
                "buffer_bytes": w.values.get("buffer_bytes"), "buffer_cap_bytes": w.values.get("buffer_cap_bytes")}
    finally:
        w.close()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="lockstep,realtime,soak")
    parser.add_argument("--seconds", type=float, default=60.0, help="lockstep and realtime window")
    parser.add_argument("--soak-seconds", type=float, default=1200.0)
    parser.add_argument("--out", type=Path, help="clips and logs (default: a temporary directory)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="photon-shadow-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    result = {"benchmark": "shadow_node", "machine": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]},
              "out": str(out)}
    for mode in args.modes.split(","):
        result[mode] = soak(args.soak_seconds, out) if mode == "soak" else profile_run(mode, args.seconds, out)
        print(json.dumps({mode: result[mode]}), file=sys.stderr, flush=True)
    result["machine"]["load_avg_1m_end"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
