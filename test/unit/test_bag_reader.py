"""Bags written with known stamps, read back: alignment by header stamp, segments, encodings, damage.

Messages are serialized by ROS itself (rclpy's CDR) and written with rosbags' Writer,
so the reader is checked against bytes it did not produce.
"""
from __future__ import annotations

import numpy as np
import pytest
from ackermann_msgs.msg import AckermannDriveStamped
from builtin_interfaces.msg import Time
from nav_msgs.msg import Odometry
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from sensor_msgs.msg import Image, Imu

from photon_msgs.msg import EpisodeStatus
from photon_policy.bags.reader import BagError, list_bags, read_episode, read_episodes
from photon_policy.bags.recorder import BagWriteError, BagWriter
from photon_policy.bags.typestore import photon_typestore

MS = 1_000_000
T0 = 1_000 * MS                      # first frame at t = 1.000 s
FRAME_NS = 20 * MS                   # 50 Hz
N_FRAMES = 20
DROPPED = 10                         # frame 10 never reaches the bag
H, W = 6, 8                          # any frame size


def frame_stamp(k: int) -> int:
    return T0 + k * FRAME_NS


def stamp(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def image(ns: int, k: int, encoding: str, pad: int = 0) -> Image:
    """Frame k: RGB (k, 100, 200) everywhere (mono8: k), in the given encoding."""
    rgb = np.empty((H, W, 3), np.uint8)
    rgb[:] = (k, 100, 200)
    pixels = {"rgb8": rgb, "bgr8": rgb[:, :, ::-1], "mono8": np.full((H, W, 1), k, np.uint8),
              "16UC1": np.zeros((H, W, 2), np.uint8)}[encoding]
    rows = np.zeros((H, pixels.shape[1] * pixels.shape[2] + pad), np.uint8)
    rows[:, :W * pixels.shape[2]] = pixels.reshape(H, -1)
    msg = Image(height=H, width=W, encoding=encoding, step=rows.shape[1])
    msg.header.stamp = stamp(ns)
    msg.data = rows.tobytes()
    return msg


def drive(ns: int, steering: float, speed: float) -> AckermannDriveStamped:
    msg = AckermannDriveStamped()
    msg.header.stamp = stamp(ns)
    msg.drive.steering_angle = float(steering)  # rclpy takes an int here and serializes it as 0.0
    msg.drive.speed = float(speed)
    return msg


def imu(ns: int, i: int) -> Imu:
    msg = Imu()
    msg.header.stamp = stamp(ns)
    msg.linear_acceleration.x, msg.linear_acceleration.y, msg.angular_velocity.z = float(i), -float(i), 0.5 * i
    return msg


def odom(ns: int, k: int) -> Odometry:
    msg = Odometry()
    msg.header.stamp = stamp(ns)
    msg.twist.twist.linear.x, msg.twist.twist.angular.z = float(k), -float(k)
    return msg


def status(ns: int, seed: int, episode: int, step: int, done: bool = False, reason: str = "") -> EpisodeStatus:
    msg = EpisodeStatus(seed=seed, episode=episode, step=step, done=done, reason=reason)
    msg.header.stamp = stamp(ns)
    return msg


TYPES = {Image: "sensor_msgs/msg/Image", AckermannDriveStamped: "ackermann_msgs/msg/AckermannDriveStamped",
         Imu: "sensor_msgs/msg/Imu", Odometry: "nav_msgs/msg/Odometry",
         EpisodeStatus: "photon_msgs/msg/EpisodeStatus"}


def write_bag(path, records, storage: str = "mcap"):
    """records: (topic, receive time ns, ROS message); written in receive-time order, like a recorder."""
    store = photon_typestore()
    plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        connections = {}
        for topic, log_ns, msg in sorted(records, key=lambda r: r[1]):
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, TYPES[type(msg)], typestore=store)
            writer.write(connections[topic], log_ns, serialize_message(msg))
    return path


# Commands on /drive at odd offsets (1.013 s + 37 ms j), one received late, and a pair with the
# same stamp as frame 5 where the one received last must win.
COMMANDS = [(T0 + 13 * MS + 37 * MS * j, 0.01 * (j + 1), float(j + 1)) for j in range(11)]
TIE_STAMP = frame_stamp(5)


def episode_records(encodings: dict[int, str] | None = None, skip_topics: tuple[str, ...] = ()):
    encodings = encodings or {}
    records = []
    for k in range(N_FRAMES):
        t = frame_stamp(k)
        if k != DROPPED:
            records.append(("/camera/image_raw", t + 3 * MS, image(t, k, encodings.get(k, "rgb8"), pad=4 * (k == 3))))
        records.append(("/teleop", t + 4 * MS, drive(t, -0.1 * k, 2.0 * k)))
        records.append(("/odom", t + 2 * MS, odom(t - 1 * MS, k)))
        records.append(("/sim/episode", t + 3 * MS, status(t, 42, 0, k, done=k == N_FRAMES - 1,
                                                          reason="time_limit" if k == N_FRAMES - 1 else "")))
    for j, (t, steering, speed) in enumerate(COMMANDS):
        late = 30 * MS if j == 3 else 0  # received after command 4: alignment must not care
        records.append(("/drive", t + 2 * MS + late, drive(t, steering, speed)))
    records.append(("/drive", TIE_STAMP + 1 * MS, drive(TIE_STAMP, 0.5, 50.0)))
    records.append(("/drive", TIE_STAMP + 2 * MS, drive(TIE_STAMP, 0.6, 60.0)))
    for i in range(2 * N_FRAMES):  # 100 Hz, 5 ms after the frame grid
        t = T0 + 5 * MS + 10 * MS * i
        records.append(("/imu", t + 1 * MS, imu(t, i)))
    # A frame in an encoding we do not convert, after the last frame: skipped and counted.
    records.append(("/camera/image_raw", frame_stamp(N_FRAMES) + 3 * MS, image(frame_stamp(N_FRAMES), 99, "16UC1")))
    return [r for r in records if r[0] not in skip_topics]


def expected_command(t: int) -> tuple[float, float]:
    """Reference: the newest /drive message stamped <= t; ties go to the one received last."""
    candidates = [(s, i, (st, sp)) for i, (s, st, sp) in enumerate(COMMANDS) if s <= t]
    if TIE_STAMP <= t:
        candidates += [(TIE_STAMP, 100, (0.5, 50.0)), (TIE_STAMP, 101, (0.6, 60.0))]
    return max(candidates)[2] if candidates else (0.0, 0.0)


KEPT = [k for k in range(N_FRAMES) if k != DROPPED]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_alignment_by_header_stamp(tmp_path, storage):
    bag = write_bag(tmp_path / "ep", episode_records(), storage)
    result = read_episode(bag)
    ep = result.arrays
    assert ep.name == "ep" and ep.seed == 42 and len(ep) == N_FRAMES - 1
    assert (result.final_step, result.final_reason) == (N_FRAMES - 1, "time_limit")
    np.testing.assert_array_equal(np.round(ep.stamps * 1e9).astype(np.int64), [frame_stamp(k) for k in KEPT])
    assert ep.frames.shape == (N_FRAMES - 1, H, W, 3) and ep.frames.dtype == np.uint8
    np.testing.assert_array_equal(ep.frames[:, 0, 0, 0], KEPT)  # frame k is where frame k belongs

    # commands: /drive (it has messages), the newest stamped at or before each frame
    np.testing.assert_allclose(ep.commands, [expected_command(frame_stamp(k)) for k in KEPT], rtol=1e-6)
    assert tuple(ep.commands[0]) == (0.0, 0.0)                       # 1.000: before the first command
    np.testing.assert_allclose(ep.commands[1], (0.01, 1.0))          # 1.020: the command stamped 1.013
    np.testing.assert_allclose(ep.commands[5], (0.6, 60.0))          # 1.100: equal stamp, received last
    np.testing.assert_allclose(ep.commands[6], (0.6, 60.0))          # 1.120: still in force
    np.testing.assert_allclose(ep.commands[7], (0.04, 4.0))          # 1.140: 1.124, received late
    # teleop labels from /teleop, stamped with the frames; odom 1 ms before; imu at 100 Hz
    np.testing.assert_allclose(ep.teleop, [(-0.1 * k, 2.0 * k) for k in KEPT], rtol=1e-6)
    np.testing.assert_allclose(ep.odom, [(k, 0.0, -k) for k in KEPT])
    np.testing.assert_allclose(ep.imu, [(0, 0, 0) if k == 0 else (2 * k - 1, -(2 * k - 1), 0.5 * (2 * k - 1))
                                        for k in KEPT])
    # the dropped frame splits the episode into two segments
    np.testing.assert_array_equal(ep.segments, [0] * DROPPED + [1] * (N_FRAMES - 1 - DROPPED))
    assert any("1 gap(s)" in w for w in result.warnings)


def test_encodings_become_rgb(tmp_path):
    encodings = {k: "bgr8" for k in range(1, N_FRAMES, 2)} | {4: "mono8"}
    result = read_episode(write_bag(tmp_path / "enc", episode_records(encodings)))
    frames = result.arrays.frames
    for i, k in enumerate(KEPT):
        want = (k, k, k) if k == 4 else (k, 100, 200)
        assert (frames[i] == want).all(), f"frame {k} ({encodings.get(k, 'rgb8')})"
    [skipped] = [w for w in result.warnings if "skipped" in w]
    assert "1 frame(s)" in skipped and "'16UC1'" in skipped


def test_teleop_drives_when_there_is_no_drive_topic_and_missing_topics_are_zeros(tmp_path):
    result = read_episode(write_bag(tmp_path / "sim", episode_records(skip_topics=("/drive", "/imu"))))
    ep = result.arrays
    np.testing.assert_allclose(ep.commands, ep.teleop)
    np.testing.assert_allclose(ep.teleop, [(-0.1 * k, 2.0 * k) for k in KEPT], rtol=1e-6)
    assert not ep.imu.any()
    assert any("/imu" in w and "zeros" in w for w in result.warnings)


def test_several_episodes_in_one_bag(tmp_path):
    records = []
    for k in range(12):
        t = frame_stamp(k)
        episode, seed = (0, 7) if k < 6 else (1, 8)
        records.append(("/camera/image_raw", t + MS, image(t, k, "rgb8")))
        records.append(("/sim/episode", t + MS, status(t, seed, episode, k % 6, done=k == 5, reason="lap_complete")))
        if k not in (6, 7):  # the new episode's first two frames have no command yet
            records.append(("/teleop", t + 2 * MS, drive(t, 0.0, 10.0 + k)))
    bag = write_bag(tmp_path / "two", records)
    first, second = read_episodes(bag)
    assert (first.arrays.seed, second.arrays.seed) == (7, 8)
    assert (len(first.arrays), len(second.arrays)) == (6, 6)
    assert first.arrays.name == "two:ep0" and first.final_reason == "lap_complete"
    np.testing.assert_allclose(first.arrays.commands[:, 1], [10, 11, 12, 13, 14, 15])
    # nothing carries over an episode boundary: zeros until the new episode's first command
    np.testing.assert_allclose(second.arrays.commands[:, 1], [0, 0, 18, 19, 20, 21])
    with pytest.raises(BagError, match="2 episodes"):
        read_episode(bag)


def test_truncated_mcap_reads_what_is_readable(tmp_path):
    records = []
    for k in range(150):  # 96x96 frames: several 1 MiB chunks
        t = frame_stamp(k)
        msg = Image(height=96, width=96, encoding="rgb8", step=288, data=bytes([k % 256]) * (96 * 96 * 3))
        msg.header.stamp = stamp(t)
        records.append(("/camera/image_raw", t + MS, msg))
        records.append(("/teleop", t + 2 * MS, drive(t, 0.0, 1.0)))
    bag = write_bag(tmp_path / "cut", records)
    [mcap] = bag.glob("*.mcap")
    size = mcap.stat().st_size
    mcap.write_bytes(mcap.read_bytes()[: int(size * 0.7)])

    result = read_episode(bag)
    n = len(result.arrays)
    assert 0 < n < 150
    np.testing.assert_array_equal(result.arrays.frames[:, 0, 0, 0], np.arange(n))  # the readable prefix, intact
    text = " ".join(result.warnings)
    assert "cut.mcap" in text and "skipped the last" in text
    assert "not readable" in text and "/camera/image_raw" in text  # what was lost, per metadata.yaml


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_a_bag_without_metadata_is_read_from_its_storage_file(tmp_path, storage):
    bag = write_bag(tmp_path / "killed", episode_records(), storage)
    (bag / "metadata.yaml").unlink()  # what a killed recorder leaves behind
    result = read_episode(bag)
    assert len(result.arrays) == N_FRAMES - 1 and result.arrays.seed == 42
    assert "no metadata.yaml" in result.warnings[0]


def test_unreadable_bags_name_the_path(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BagError, match=f"{empty}.*empty directory"):
        read_episode(empty)
    with pytest.raises(BagError, match=f"{tmp_path / 'nope'}.*no such"):
        read_episode(tmp_path / "nope")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: 9}\n")
    with pytest.raises(BagError, match=f"{junk}.*unreadable"):
        read_episode(junk)
    no_camera = write_bag(tmp_path / "nocam", [("/teleop", T0, drive(T0, 0.0, 1.0))])
    with pytest.raises(BagError, match="no sensor_msgs/msg/Image messages on /camera/image_raw"):
        read_episode(no_camera)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_writer_round_trip_and_refuses_a_non_empty_dir(tmp_path, storage):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("")
    with pytest.raises(BagWriteError, match=f"{tmp_path / 'taken'} exists and is not empty"):
        BagWriter(tmp_path / "taken", storage)
    (tmp_path / "fresh").mkdir()  # an empty directory is fine
    with BagWriter(tmp_path / "fresh", storage) as bag:
        bag.add_topic("/camera/image_raw", "sensor_msgs/msg/Image")
        bag.add_topic("/teleop", "ackermann_msgs/msg/AckermannDriveStamped")
        for k in range(5):
            bag.write("/camera/image_raw", frame_stamp(k), serialize_message(image(frame_stamp(k), k, "rgb8")))
            bag.write("/teleop", frame_stamp(k), serialize_message(drive(frame_stamp(k), 0.1, float(k))))
    with Reader(tmp_path / "fresh") as reader:
        assert reader.message_count == 10
    assert len(list((tmp_path / "fresh").glob("*.mcap" if storage == "mcap" else "*.db3"))) == 1
    result = read_episode(tmp_path / "fresh")
    assert len(result.arrays) == 5 and result.arrays.seed is None
    np.testing.assert_allclose(result.arrays.commands[:, 1], range(5))


def test_list_bags(tmp_path):
    for name in ("b", "a", "sub/c"):
        write_bag(tmp_path / name, [("/teleop", T0, drive(T0, 0.0, 1.0))])
    (tmp_path / "not_a_bag").mkdir()
    assert list_bags(tmp_path) == [tmp_path / "a", tmp_path / "b", tmp_path / "sub" / "c"]
