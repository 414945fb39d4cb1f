"""`photon play` holds the recorded rate: a synthetic 2-minute bag played to a subscriber.

  .venv/bin/python benchmarks/play_rate.py [--seconds 120] [--rate 1.0]

The bag: 50 Hz camera (96x96 rgb8, as the simulator records it) and 50 Hz /drive commands,
written with the project's BagWriter (MCAP, zstd). `photon play` runs as its own process; a
probe in this process subscribes to both topics. Prints JSON with two views of the same run:
  player    the player's own report: bag seconds per wall second, lateness of each message
            against its schedule (max, p99, p50)
  receiver  what the subscriber saw: bag span of the camera frames over the wall time between
            the first and last frame received, and frames received of those sent
Target (issue 13): rate within 1 % of the recorded one. Timing lives here, not in the tests.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test"))

from ackermann_msgs.msg import AckermannDriveStamped  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from rclpy.serialization import serialize_message  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from conftest import Probe  # noqa: E402
from photon_policy.bags.recorder import BagWriter  # noqa: E402
from photon_policy.launcher import start_node  # noqa: E402

HZ = 50
NS = 1_000_000_000


def write_bag(path: Path, seconds: float) -> int:
    """Camera + commands at 50 Hz for `seconds`; returns the frame count."""
    rng = np.random.default_rng(0)
    frames = int(seconds * HZ) + 1
    with BagWriter(path, "mcap") as bag:
        bag.add_topic("/camera/image_raw", "sensor_msgs/msg/Image")
        bag.add_topic("/drive", "ackermann_msgs/msg/AckermannDriveStamped")
        image = Image(height=96, width=96, encoding="rgb8", step=288)
        command = AckermannDriveStamped()
        for k in range(frames):
            t = k * NS // HZ
            image.header.stamp.sec, image.header.stamp.nanosec = divmod(t, NS)
            image.data = rng.integers(0, 256, 96 * 96 * 3, dtype=np.uint8).tobytes()
            bag.write("/camera/image_raw", t, serialize_message(image))
            command.header.stamp = image.header.stamp
            command.drive.speed = float(k % 7)
            bag.write("/drive", t + 3_000_000, serialize_message(command))
    return frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--rate", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bag, report_path = Path(tmp) / "bag", Path(tmp) / "report.json"
        frames = write_bag(bag, args.seconds)
        probe = Probe()
        arrivals: list[float] = []
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        probe.node.create_subscription(Image, "/camera/image_raw", lambda _: arrivals.append(time.monotonic()), qos,
                                       raw=True)
        probe.node.create_subscription(AckermannDriveStamped, "/drive", lambda _: None, qos, raw=True)
        log = Path(tmp) / "player.log"
        player = start_node([str(Path(sys.executable).parent / "photon"), "play", str(bag), "--rate", str(args.rate),
                             "--wait-for-subscribers", "60", "--json", str(report_path)],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)
        try:
            probe.wait_for(lambda: player.poll() is not None, args.seconds / args.rate + 120,
                           lambda: f"the player to finish: {log.read_text()}")
            probe.spin(0.5)
        finally:
            if player.poll() is None:
                player.kill()
                player.wait()
            probe.close()
        if player.returncode != 0:
            print(log.read_text(), file=sys.stderr)
            return 1
        report = json.loads(report_path.read_text())
    bag_span = (frames - 1) / HZ
    received_span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else float("nan")
    received_rate = bag_span / received_span if len(arrivals) == frames else float("nan")
    print(json.dumps({
        "bag": {"seconds": bag_span, "camera_hz": HZ, "command_hz": HZ, "frame": "96x96 rgb8", "frames": frames},
        "player": {k: report[k] for k in ("rate_asked", "rate_achieved", "rate_error_pct", "lateness", "wall_s")},
        "receiver": {"frames_received": len(arrivals), "rate_achieved": round(received_rate, 6),
                     "rate_error_pct": round(100 * (received_rate / args.rate - 1), 4)},
        "target_pct": 1.0,
    }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
