"""Bags Photon did not write, as a car's `ros2 bag record` leaves them: other topic names, 640x480
and larger frames, bgr8 and JPEG CompressedImage, sqlite3, no IMU or odometry, a wall-clock
origin, a message type nobody here has, a file cut short. The reader and the player read them and
say what they skipped and why."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from ackermann_msgs.msg import AckermannDriveStamped
from builtin_interfaces.msg import Time
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from sensor_msgs.msg import CompressedImage, Image

from photon_policy.bags.data_dirs import read_data_dirs
from photon_policy.bags.player import PlayOptions, load_bag
from photon_policy.bags.reader import BagError, SkippedTopic, read_episode
from photon_policy.bags.typestore import new_typestore

NS = 1_000_000_000
ORIGIN = 1_733_000_000 * NS   # stamps from a car's wall clock
FRAMES = 4
STEP = 33_333_333             # 30 Hz camera
GADGET = "foreign_msgs/msg/Gadget"


def stamp(ns: int) -> Time:
    return Time(sec=ns // NS, nanosec=ns % NS)


def picture(k: int, h: int, w: int) -> np.ndarray:
    """An RGB frame with structure (JPEG keeps it): a gradient and a bright square moving with k."""
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    rgb[..., 2] = 40 * k
    rgb[h // 4:h // 2, w // 4 + 10 * k:w // 2 + 10 * k, 1] = 250
    return rgb


def camera_message(k: int, h: int, w: int, kind: str):
    rgb = picture(k, h, w)
    if kind == "jpeg":
        msg = CompressedImage(format="rgb8; jpeg compressed bgr8")
        msg.data = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    else:  # a driver's native bgr8
        msg = Image(height=h, width=w, encoding="bgr8", step=3 * w, data=rgb[:, :, ::-1].tobytes())
    msg.header.stamp = stamp(ORIGIN + k * STEP)
    msg.header.frame_id = "cam"
    return msg


def write_foreign_bag(path, storage: str, camera_topic: str, h: int, w: int, kind: str):
    """Camera + /vesc/drive commands + a foreign message type; no IMU, no odometry."""
    store = new_typestore(**{GADGET: "float64 x"})
    plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
    camera_type = "sensor_msgs/msg/CompressedImage" if kind == "jpeg" else "sensor_msgs/msg/Image"
    with Writer(path, version=8, storage_plugin=plugin) as writer:
        camera = writer.add_connection(camera_topic, camera_type, typestore=store)
        drive = writer.add_connection("/vesc/drive", "ackermann_msgs/msg/AckermannDriveStamped", typestore=store)
        gadget = writer.add_connection("/gadget", GADGET, typestore=store)
        for k in range(FRAMES):
            t = ORIGIN + k * STEP
            writer.write(camera, t + 5_000_000, serialize_message(camera_message(k, h, w, kind)))
            command = AckermannDriveStamped()
            command.header.stamp = stamp(t)  # answers frame k
            command.drive.steering_angle, command.drive.speed = 0.1 * k, 1.5
            writer.write(drive, t + 6_000_000, serialize_message(command))
            writer.write(gadget, t + 7_000_000, store.serialize_cdr(store.types[GADGET](x=float(k)), GADGET))
    return path


REMAP = {"/vesc/drive": "/drive"}


@pytest.mark.parametrize("storage, topic, h, w, kind", [
    ("sqlite3", "/cam/image", 480, 640, "bgr8"),
    ("mcap", "/camera/image_raw/compressed", 600, 800, "jpeg")])
def test_the_reader_reads_a_foreign_bag_through_a_topic_map(tmp_path, storage, topic, h, w, kind):
    bag = write_foreign_bag(tmp_path / "bag", storage, topic, h, w, kind)
    with pytest.raises(BagError, match=f"no .* messages on /camera/image_raw .*remap a foreign bag's camera topic"):
        read_episode(bag)
    read = read_episode(bag, remap={topic: "/camera/image_raw", **REMAP})
    ep = read.arrays
    assert ep.frames.shape == (FRAMES, h, w, 3)
    for k in range(FRAMES):
        error = np.abs(ep.frames[k].astype(int) - picture(k, h, w)).mean()
        assert error < (2.0 if kind == "jpeg" else 1e-9), f"frame {k}: mean error {error}"
    np.testing.assert_allclose(ep.stamps, (ORIGIN + np.arange(FRAMES) * STEP) / NS)  # no shift to 0
    np.testing.assert_allclose(ep.commands, [[0.1 * k, 1.5] for k in range(FRAMES)], atol=1e-6)
    assert not ep.imu.any() and not ep.odom.any()
    assert "no sensor_msgs/msg/Imu messages on /imu: its columns are zeros" in read.warnings
    assert "no nav_msgs/msg/Odometry messages on /odom: its columns are zeros" in read.warnings
    assert read.skipped == [SkippedTopic("/gadget", GADGET, FRAMES, "not one of the topics a dataset reads")]
    small = read_episode(bag, remap={topic: "/camera/image_raw"}, frame_size=(96, 72)).arrays.frames
    assert small.shape == (FRAMES, 72, 96, 3)  # resized as decoded: a long drive is never held at full size
    assert np.abs(small[1].astype(int) - cv2.resize(ep.frames[1], (96, 72), interpolation=cv2.INTER_AREA)).max() <= 1


def test_the_dataset_path_takes_the_topic_map_and_lists_what_it_left_out(tmp_path):
    write_foreign_bag(tmp_path / "data" / "drive1", "sqlite3", "/cam/image", 480, 640, "bgr8")
    write_foreign_bag(tmp_path / "data" / "drive2", "sqlite3", "/cam/image", 480, 640, "bgr8")
    lines: list[str] = []
    read = read_data_dirs([tmp_path / "data"], log=lines.append, remap={"/cam/image": "/camera/image_raw", **REMAP})
    assert len(read.episodes) == 2 and not read.skipped
    assert f"[photon] not used, in 2 bag(s): /gadget ({GADGET}): not one of the topics a dataset reads" in lines


def test_the_player_loads_a_foreign_bag_with_its_topics_remapped(tmp_path):
    bag = write_foreign_bag(tmp_path / "bag", "sqlite3", "/cam/image", 480, 640, "bgr8")
    options = PlayOptions(remap=(("/cam/image", "/camera/image_raw"), ("/nope", "/x")))
    loaded = load_bag(bag, options)
    assert len(loaded.messages) == 3 * FRAMES and loaded.messages[0][0] == ORIGIN + 5_000_000
    assert [m[1] for m in loaded.messages[:3]] == ["/cam/image", "/vesc/drive", "/gadget"]
    assert options.published_name("/cam/image") == "/camera/image_raw"
    assert loaded.topics["/cam/image"].msgtype == "sensor_msgs/msg/Image"
    assert not loaded.topics["/cam/image"].qos_recorded  # rosbags wrote no QoS: the default is used
    assert loaded.problems == ["remap /nope: no such topic in the bag"]


def test_a_truncated_foreign_bag_is_read_up_to_the_damage_and_reported(tmp_path):
    bag = write_foreign_bag(tmp_path / "bag", "mcap", "/cam/image", 480, 640, "bgr8")
    [mcap] = bag.glob("*.mcap")
    mcap.write_bytes(mcap.read_bytes()[:mcap.stat().st_size * 2 // 3])  # a recording cut short
    loaded = load_bag(bag)
    assert 0 < len(loaded.messages) < 3 * FRAMES
    assert any("rosbags cannot read it" in p for p in loaded.problems), loaded.problems
    assert any("messages listed in metadata.yaml but not readable" in p for p in loaded.problems), loaded.problems
    read = read_episode(bag, remap={"/cam/image": "/camera/image_raw"})
    assert 0 < len(read.arrays) < FRAMES and any("reindex" in w for w in read.warnings)
