"""Clips without ROS: stamps read from CDR bytes, the memory-capped ring buffer, bags and index lines."""
from __future__ import annotations

import json
import os

import pytest

from photon_policy.bags.reader import read_raw
from photon_policy.bags.typestore import photon_typestore
from photon_policy.shadow.cdr import stamp_ns
from photon_policy.shadow.clips import INDEX, Buffered, ClipJob, ClipWriter, RingBuffer

DRIVE = "ackermann_msgs/msg/AckermannDriveStamped"


def drive_cdr(sec: int, nanosec: int, speed: float = 0.0) -> bytes:
    store = photon_typestore()
    Msg = store.types[DRIVE]
    Header, Time = store.types["std_msgs/msg/Header"], store.types["builtin_interfaces/msg/Time"]
    Drive = store.types["ackermann_msgs/msg/AckermannDrive"]
    msg = Msg(header=Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id="base_link"),
              drive=Drive(steering_angle=0.0, steering_angle_velocity=0.0, speed=speed, acceleration=0.0, jerk=0.0))
    return bytes(store.serialize_cdr(msg, DRIVE))


def test_stamps_are_read_from_the_serialized_header():
    assert stamp_ns(drive_cdr(12, 340_000_000)) == 12_340_000_000
    store = photon_typestore()
    tf = store.types["tf2_msgs/msg/TFMessage"](transforms=[])
    assert stamp_ns(bytes(store.serialize_cdr(tf, "tf2_msgs/msg/TFMessage")), first_in_sequence=True) is None


def test_ring_buffer_holds_its_cap_and_knows_what_it_lost():
    ring = RingBuffer(max_bytes=1000)
    for k in range(30):
        ring.add(Buffered(k * 10**9, k, "/x", bytes(100)))
    assert ring.bytes <= 1000 and len(ring.items) == 10 and ring.evicted == 20
    window, truncated = ring.window(25 * 10**9, 27 * 10**9)
    assert [m.stamp_ns // 10**9 for m in window] == [25, 26, 27] and not truncated
    assert ring.window(15 * 10**9, 27 * 10**9)[1]  # starts before what is left: truncated
    assert ring.span_s() == 9.0


def test_clip_is_a_readable_bag_and_its_index_line_is_on_disk(tmp_path):
    writer = ClipWriter(tmp_path)
    messages = [Buffered(k * 10**9, 1000 + k, "/teleop", drive_cdr(k, 0, float(k))) for k in range(5)]
    writer.submit(ClipJob(tmp_path / "run_ev0001", messages, {"/teleop": DRIVE, "/policy/drive": DRIVE},
                          {"id": 1, "peak": 2.5}))
    writer.close()
    [line] = [json.loads(s) for s in (tmp_path / INDEX).read_text().splitlines()]
    assert line["id"] == 1 and line["clip"] == "run_ev0001" and line["error"] == "" and line["bytes"] > 0
    raw, types, warnings = read_raw(tmp_path / "run_ev0001", {"/teleop", "/policy/drive"})
    assert len(raw["/teleop"]) == 5 and types["/teleop"] == DRIVE and not raw.get("/policy/drive")
    assert writer.counts["clips"] == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_an_unwritable_directory_is_counted_and_the_line_says_why(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    os.chmod(clips, 0o500)
    try:
        errors: list[str] = []
        writer = ClipWriter(clips, errors.append)
        writer.write(ClipJob(clips / "ev1", [Buffered(0, 0, "/teleop", drive_cdr(0, 0))], {"/teleop": DRIVE},
                             {"id": 1}))
        assert writer.counts["clip_errors"] == 1 and writer.counts["index_errors"] == 1 and len(errors) == 2
        writer.close()
    finally:
        os.chmod(clips, 0o700)
