"""Real-time soak of `photon up sim-policy`: crashes, memory growth, bad commands, camera gaps.

  .venv/bin/python benchmarks/soak.py --minutes 30 [--json soak.json]

Runs the profile as a user would, watches /drive, /camera/image_raw and /diagnostics from a probe
node, samples every node's resident memory (/proc) every 10 s, and prints one JSON object:
node exits, memory growth after minute 2 (per node, %), commands that are non-finite or outside
the policy's limits, camera gaps (largest, count over 100 ms), and the simulator's steps/s.
Not part of `make test`: it takes as long as you ask.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test"))

from ackermann_msgs.msg import AckermannDriveStamped  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from conftest import Probe  # noqa: E402
from photon_policy.launcher import ProfileProcesses  # noqa: E402
from photon_policy.policy.safety import SafetyConfig  # noqa: E402
from photon_policy.profiles import load_profile  # noqa: E402

GAP_S = 0.1


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--log-dir", type=Path, default=Path("/tmp/photon-soak"))
    args = ap.parse_args()
    limits = SafetyConfig()
    probe = Probe()
    camera_times: list[float] = []
    bad_commands = {"nonfinite": 0, "out_of_limit": 0}
    commands = [0]
    steps_per_s: list[float] = []

    def on_drive(msg: AckermannDriveStamped) -> None:
        commands[0] += 1
        s, v = msg.drive.steering_angle, msg.drive.speed
        if not (math.isfinite(s) and math.isfinite(v)):
            bad_commands["nonfinite"] += 1
        elif abs(s) > limits.max_steering_angle + 1e-6 or not -1e-6 <= v <= limits.max_speed + 1e-4:
            bad_commands["out_of_limit"] += 1

    def on_diag(msg: DiagnosticArray) -> None:
        for st in msg.status:
            if st.name.endswith(": vehicle"):
                v = {kv.key: kv.value for kv in st.values}
                if "steps_per_second" in v:
                    steps_per_s.append(float(v["steps_per_second"]))

    probe.node.create_subscription(AckermannDriveStamped, "/drive", on_drive, 100)
    probe.node.create_subscription(Image, "/camera/image_raw", lambda m: camera_times.append(time.monotonic()),
                                   qos_profile_sensor_data)
    probe.node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    processes = ProfileProcesses(load_profile("sim-policy"), log_dir=args.log_dir)
    processes.start()
    memory: dict[str, list[tuple[float, float]]] = {n.name: [] for n in processes.nodes}
    started = time.monotonic()
    next_sample = started
    try:
        while time.monotonic() - started < args.minutes * 60 and not processes.exited():
            probe.spin(0.5)
            if time.monotonic() >= next_sample:
                for node in processes.nodes:
                    memory[node.name].append((time.monotonic() - started, rss_mb(node.process.pid)))
                next_sample += 10.0
        exited = {n.name: n.returncode for n in processes.exited()}
    finally:
        codes = processes.stop()
        probe.close()
    ran_s = time.monotonic() - started
    times = [t for t in camera_times if t - started > 30.0]  # after start-up
    gaps = [b - a for a, b in zip(times, times[1:])]
    growth = {}
    for name, samples in memory.items():
        after2 = [m for t, m in samples if t >= 120.0]
        growth[name] = round(100.0 * (after2[-1] - after2[0]) / after2[0], 2) if len(after2) >= 2 else None
    report = {"minutes": round(ran_s / 60, 2), "crashes": exited, "exit_codes_on_stop": codes,
              "memory_growth_after_minute_2_pct": growth,
              "rss_mb_last": {n: round(s[-1][1], 1) for n, s in memory.items() if s},
              "commands": commands[0], "nonfinite_commands": bad_commands["nonfinite"],
              "out_of_limit_commands": bad_commands["out_of_limit"],
              "camera_frames": len(camera_times), "camera_gap_max_ms": round(max(gaps) * 1e3, 1) if gaps else None,
              f"camera_gaps_over_{int(GAP_S * 1e3)}ms": sum(g > GAP_S for g in gaps),
              "camera_hz": round(len(times) / max(times[-1] - times[0], 1e-9), 1) if len(times) > 1 else None,
              "sim_steps_per_s_min_max": [min(steps_per_s), max(steps_per_s)] if steps_per_s else None}
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0 if not exited and not any(bad_commands.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
