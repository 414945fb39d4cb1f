"""Read rosbag2 bags (MCAP or sqlite3; ours or `ros2 bag record` on a car) into EpisodeArrays.

Time alignment is by HEADER stamps (sim time in simulation), never by receive
time. For camera frame k with stamp t_k:
  commands[k]  newest message on the driving topic stamped <= t_k (/drive if it has
               messages, else /teleop: in the `sim` profile the simulator drives from /teleop)
  teleop[k]    newest /teleop message stamped <= t_k
  imu[k], odom[k]  newest message stamped <= t_k
Zeros before the first message. Among equal stamps the one received last wins.

A bag may hold several simulator episodes (EpisodeStatus.episode changes): each
becomes its own EpisodeArrays, and nothing is carried across an episode boundary.
Frames repeated with the same stamp (a lockstep resend) are kept once. A camera step
longer than 1.5x the median starts a new segment.

What cannot be read cleanly is reported, not hidden: a missing topic (zeros), frames
with an unsupported encoding (skipped), a truncated MCAP file (read up to the damage).
Only a bag with nothing to read raises BagError.

Foreign bags (a car's `ros2 bag record`): `remap` maps the bag's topic names onto the ones
read here ({"/cam/image": "/camera/image_raw"}); the camera topic may hold sensor_msgs/Image
(rgb8, bgr8, rgba8, bgra8, mono8, any size) or sensor_msgs/CompressedImage (JPEG, PNG).
Every bag topic the episode does not use is listed in BagEpisode.skipped, with the reason.
"""
from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import yaml
from rosbags.rosbag2 import Reader, ReaderError

from photon_policy.bags.typestore import photon_typestore

try:  # what rosbags' chunk decompressors raise on damaged data: ZstdError is no ValueError
    from rosbags.rosbag2.storage_mcap import zstd as _zstd
    DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (_zstd.ZstdError,)
except (ImportError, AttributeError):
    DECOMPRESS_ERRORS = ()
READ_ERRORS = (ReaderError, OSError, KeyError, ValueError, RuntimeError, TypeError, IndexError, EOFError,
               OverflowError, MemoryError, struct.error, *DECOMPRESS_ERRORS)
"""What rosbags raises on a damaged bag (lz4: RuntimeError; a file cut to its magic: TypeError; a record
length corrupted to ~2**63, which rosbags tries to read or allocate: OverflowError, MemoryError; the last
three found by the fuzz tier); anything else is a bug."""
REINDEX_HINT = "run `photon bag reindex {path}` to make it readable by rosbags and ROS tools"
from photon_policy.bags.episode_arrays import EpisodeArrays
from photon_policy.ros.images import decode_compressed, decode_image

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
DRIVE = "ackermann_msgs/msg/AckermannDriveStamped"
IMU = "sensor_msgs/msg/Imu"
ODOM = "nav_msgs/msg/Odometry"
STATUS = "photon_msgs/msg/EpisodeStatus"
GAP_FACTOR = 1.5


class BagError(RuntimeError):
    """A bag that cannot be read at all; the message names the path and the reason."""


@dataclass
class BagEpisode:
    """One episode read from a bag, with what was wrong with the bag."""
    arrays: EpisodeArrays
    warnings: list[str] = field(default_factory=list)
    path: Path | None = None
    episode: int | None = None
    """The simulator's episode counter (None without /sim/episode)."""
    final_step: int = 0
    """Steps of the episode as its last status says (0 without /sim/episode)."""
    final_reason: str = ""
    """Why it ended ("lap_complete", "time_limit", ...; "" if the bag ends first)."""
    skipped: list["SkippedTopic"] = field(default_factory=list)
    """Every topic of the bag that this episode does not use, and why."""


@dataclass(frozen=True)
class SkippedTopic:
    """A bag topic left out (by the reader or the player): what it is and why."""
    topic: str
    msgtype: str
    messages: int
    reason: str

    def __str__(self) -> str:
        return f"{self.topic} ({self.msgtype or 'unknown type'}, {self.messages} messages): {self.reason}"


# --- public API ----------------------------------------------------------------------------------

def list_bags(root: Path | str) -> list[Path]:
    """Every directory under `root` (itself included) that holds a bag, sorted: a metadata.yaml, or
    a storage file without one (a recording cut by SIGKILL, which read_episodes reads and warns of)."""
    root = Path(root)
    if not root.is_dir():
        raise BagError(f"{root}: no such directory")
    return sorted({p.parent for pattern in ("metadata.yaml", "*.mcap", "*.db3") for p in root.rglob(pattern)})


def read_episode(bag_dir: Path | str, camera_topic: str = "/camera/image_raw", **topics: Any) -> BagEpisode:
    """The one episode in a bag (see read_episodes for the topics); BagError if it holds several."""
    episodes = read_episodes(bag_dir, camera_topic, **topics)
    if len(episodes) != 1:
        raise BagError(f"{bag_dir}: holds {len(episodes)} episodes; use read_episodes")
    return episodes[0]


def read_episodes(bag_dir: Path | str, camera_topic: str = "/camera/image_raw", drive_topic: str | None = None,
                  teleop_topic: str = "/teleop", imu_topic: str = "/imu", odom_topic: str = "/odom",
                  episode_topic: str = "/sim/episode", remap: dict[str, str] | None = None,
                  frame_size: tuple[int, int] | None = None) -> list[BagEpisode]:
    """Every episode in a bag, in time order. `drive_topic=None`: /drive if it has messages, else teleop.
    `remap`: bag topic -> the name it is read as (e.g. {"/cam/image": "/camera/image_raw"}).
    `frame_size`: (width, height) every frame is resized to as it is decoded (area averaging), so a
    long 640x480 drive is held at the model's size, never at full size; None keeps the bag's size."""
    path = Path(bag_dir)
    drive_candidates = [drive_topic] if drive_topic else ["/drive", teleop_topic]
    wanted = {camera_topic, teleop_topic, imu_topic, odom_topic, episode_topic, *drive_candidates}
    as_read = dict(remap or {})
    in_bag = {ours: bag for bag, ours in as_read.items()}
    raw, types, warnings = read_raw(path, {in_bag.get(t, t) for t in wanted})
    raw = {as_read.get(t, t): v for t, v in raw.items()}
    types = {as_read.get(t, t): v for t, v in types.items()}
    unused: dict[str, str] = {}  # topic read as -> why it is not used

    def messages(topic: str, *expected_types: str) -> list[tuple[int, bytes]]:
        if not raw.get(topic):
            return []
        if types[topic] not in expected_types:
            note = f"{topic} has type {types[topic]}, expected {' or '.join(expected_types)}: not used"
            if note not in warnings:
                warnings.append(note)
            unused[topic] = f"type {types[topic]}, expected {' or '.join(expected_types)}"
            return []
        return raw[topic]

    images = messages(camera_topic, IMAGE, COMPRESSED)
    if not images:
        present = ", ".join(sorted(t for t in raw if raw[t])) or "none"
        raise BagError(f"{path}: no {IMAGE} messages on {camera_topic} (nor {COMPRESSED}; topics read: {present}"
                       + ("; remap a foreign bag's camera topic onto it" if camera_topic not in raw else "") + ")")
    stamps, frames = _decode_frames(images, types[camera_topic], camera_topic, warnings, frame_size)
    if len(stamps) == 0:
        raise BagError(f"{path}: none of the {len(images)} frames on {camera_topic} could be decoded")

    driving = next((t for t in drive_candidates if messages(t, DRIVE)), None)
    teleop_msgs = messages(teleop_topic, DRIVE)
    if driving is None:
        what = "commands and teleop labels" if not teleop_msgs else "commands"
        warnings.append(f"no {DRIVE} messages on {' or '.join(drive_candidates)}: {what} are zeros")
    elif not teleop_msgs:
        warnings.append(f"no {DRIVE} messages on {teleop_topic}: teleop labels are zeros")
    command_src = _commands(messages(driving, DRIVE) if driving else [], driving, warnings, path)
    teleop_src = command_src if driving == teleop_topic else _commands(teleop_msgs, teleop_topic, warnings, path)
    imu_src = _vectors(messages(imu_topic, IMU), IMU, imu_topic, warnings,
                       lambda m: (m.linear_acceleration.x, m.linear_acceleration.y, m.angular_velocity.z), path)
    odom_src = _vectors(messages(odom_topic, ODOM), ODOM, odom_topic, warnings,
                        lambda m: (m.twist.twist.linear.x, m.twist.twist.linear.y, m.twist.twist.angular.z), path)
    statuses = _statuses(messages(episode_topic, STATUS), episode_topic, warnings)
    used = {camera_topic, teleop_topic, imu_topic, odom_topic, episode_topic, *([driving] if driving else [])}
    skipped = [SkippedTopic(bag, msgtype, count, unused.get(ours) or (
                   "not one of the topics a dataset reads" + (f" (read as {ours})" if ours != bag else "")))
               for bag, (msgtype, count) in bag_topics(path).items()
               for ours in [as_read.get(bag, bag)] if ours not in used or ours in unused]

    episodes = []
    lower = None  # messages at or before the previous episode's last frame belong to it
    slices = _episode_slices(stamps, statuses)
    for ep, seed, sel in slices:
        t = stamps[sel]
        name = path.name if len(slices) == 1 else f"{path.name}:ep{ep}"
        ep_warnings = list(warnings)
        segments = _segments(t)
        if segments[-1] > 0:
            ep_warnings.append(f"{name}: {int(segments[-1])} gap(s) in {camera_topic} (> {GAP_FACTOR}x the "
                               f"median frame step): {int(segments[-1]) + 1} segments")
        arrays = EpisodeArrays(
            name=name, stamps=t / 1e9, frames=frames[sel],
            commands=_align(command_src, t, lower), teleop=_align(teleop_src, t, lower),
            imu=_align(imu_src, t, lower), odom=_align(odom_src, t, lower),
            seed=seed, segments=segments)
        final_step, final_reason = _final(statuses, ep)
        episodes.append(BagEpisode(arrays, ep_warnings, path, ep, final_step, final_reason, skipped))
        lower = int(t[-1])
    return episodes


# --- raw messages --------------------------------------------------------------------------------

def bag_topics(path: Path) -> dict[str, tuple[str, int]]:
    """topic -> (type, message count) as metadata.yaml lists them; {} without a readable metadata.yaml."""
    try:
        info = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        return {t["topic_metadata"]["name"]: (str(t["topic_metadata"]["type"]), int(t["message_count"]))
                for t in info["topics_with_message_count"]}
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
        return {}


def read_raw(path: Path, topics: set[str] | None) -> tuple[dict[str, list[tuple[int, bytes]]], dict[str, str],
                                                            list[str]]:
    """(topic -> [(receive time ns, CDR bytes)], topic -> type, warnings) for the `topics` present
    (None: every topic)."""
    if not path.exists():
        raise BagError(f"{path}: no such bag directory")
    if not path.is_dir():
        raise BagError(f"{path}: not a directory (a rosbag2 bag is a directory with metadata.yaml)")
    mcaps = sorted(path.glob("*.mcap"))
    if not (path / "metadata.yaml").is_file():
        # A recorder that was killed leaves its storage file without metadata.yaml.
        note = (f"{path}: no metadata.yaml (the recording was not closed?); read the storage file directly; "
                + REINDEX_HINT.format(path=path))
        if mcaps:
            raw, types, warnings = _scan_mcaps(mcaps, topics, None)
            return raw, types, [note, *warnings]
        db3s = sorted(path.glob("*.db3"))
        if db3s:
            raw, types, warnings = _read_with_rosbags(db3s, topics, path)
            return raw, types, [note, *warnings]
        what = "empty directory" if not any(path.iterdir()) else "no metadata.yaml, .mcap or .db3 file"
        raise BagError(f"{path}: not a rosbag2 bag ({what})")
    try:
        raw, types, warnings = _read_with_rosbags([path], topics, path, strict=bool(mcaps))
        # A damaged chunk can also decompress into garbage that rosbags skips without a word.
        return raw, types, warnings + _lost(raw, topics, _metadata_counts(path))
    except _RosbagsFailed as failed:
        raw, types, warnings = _scan_mcaps(mcaps, topics, _metadata_counts(path))
        return raw, types, [f"{path}: rosbags cannot read it ({failed}); read the .mcap record by record; "
                            + REINDEX_HINT.format(path=path), *warnings]


class _RosbagsFailed(Exception):
    pass


def _read_with_rosbags(sources: list[Path], topics: set[str], bag: Path, strict: bool = False):
    """Read with rosbags' Reader (a bag directory, or bare storage files). A failure part-way keeps
    what was read, with a warning; `strict` raises _RosbagsFailed instead (the MCAP fallback follows)."""
    raw: dict[str, list[tuple[int, bytes]]] = {}
    types: dict[str, str] = {}
    for source in sources:
        try:
            with Reader(source) as reader:
                connections = [c for c in reader.connections if topics is None or c.topic in topics]
                if not connections:
                    continue  # rosbags reads an empty selection as "every connection"
                for c in connections:
                    types[c.topic] = c.msgtype
                    raw.setdefault(c.topic, [])
                for connection, timestamp, data in reader.messages(connections=connections):
                    raw[connection.topic].append((timestamp, bytes(data)))
        except READ_ERRORS as exc:
            reason = str(exc) or type(exc).__name__
            if strict:
                raise _RosbagsFailed(reason) from exc
            n = sum(map(len, raw.values()))
            if not n:
                raise BagError(f"{bag}: unreadable bag: {reason}") from exc
            return raw, types, [f"{bag}: reading stopped after {n} messages: {reason}"]
    return raw, types, []


def _metadata_counts(path: Path) -> dict[str, int] | None:
    return {topic: count for topic, (_, count) in bag_topics(path).items()} or None


def _scan_mcaps(files: list[Path], topics: set[str], expected: dict[str, int] | None):
    raw: dict[str, list[tuple[int, bytes]]] = {}
    types: dict[str, str] = {}
    warnings: list[str] = []
    for file in files:
        scan = McapScan(file, topics)
        for topic, msgtype, log_time, data in scan.messages:
            types[topic] = msgtype
            raw.setdefault(topic, []).append((log_time, data))
        if scan.problem:
            warnings.append(f"{file.name}: {scan.problem}: read {len(scan.messages)} messages from the first "
                            f"{scan.good_bytes} of {scan.size} bytes; skipped the last "
                            f"{scan.size - scan.good_bytes} bytes")
    return raw, types, warnings + _lost(raw, topics, expected)


def _lost(raw: dict[str, list], topics: set[str], expected: dict[str, int] | None) -> list[str]:
    """A warning naming the messages metadata.yaml lists but the reading did not find, if any."""
    if expected is None:
        return []
    lost = {t: n - len(raw.get(t, [])) for t, n in expected.items()
            if (topics is None or t in topics) and n > len(raw.get(t, []))}
    if not lost:
        return []
    return ["messages listed in metadata.yaml but not readable: " +
            ", ".join(f"{t} {n}" for t, n in sorted(lost.items()))]


class McapScan:
    """Read an MCAP file front to back, record by record, stopping at the first damaged one.

    For files rosbags refuses (no footer: cut short, or never closed). Messages come
    from chunks and from records outside chunks; indexes and summary are ignored.
    """

    MAGIC = b"\x89MCAP0\r\n"

    def __init__(self, path: Path, topics: set[str] | None) -> None:
        """`topics`: the topics whose messages to keep; None keeps every topic's."""
        from rosbags.rosbag2.storage_mcap import decompress

        self._decompress = decompress
        self.path = path
        self.topics = topics
        self.schemas: dict[int, str] = {}
        self.channels: dict[int, tuple[str, str]] = {}  # id -> (topic, schema name)
        self.messages: list[tuple[str, str, int, bytes]] = []
        self.problem = ""
        data = path.read_bytes()
        self.size = len(data)
        self.good_bytes = 0
        if data[:8] != self.MAGIC:
            self.problem = "not an MCAP file (bad magic)"
            return
        self.good_bytes = 8
        ended = self._records(memoryview(data), 8, len(data), top=True)
        if not ended and not self.problem:
            self.problem = "ends without an MCAP footer (truncated, or the recording was not closed)"

    def _records(self, buf: memoryview, pos: int, end: int, top: bool) -> bool:
        """Parse records in buf[pos:end]; True when a footer/data-end record was reached."""
        while pos < end:
            if end - pos < 9:
                self.problem = self.problem or f"truncated record at byte {pos}"
                return False
            op = buf[pos]
            (length,) = struct.unpack_from("<Q", buf, pos + 1)
            body_start, body_end = pos + 9, pos + 9 + length
            if body_end > end:
                self.problem = self.problem or f"truncated record at byte {pos}"
                return False
            body = buf[body_start:body_end]
            try:
                if op in (0x02, 0x0F):  # footer, data end: nothing more to read
                    return True
                if op == 0x03:
                    self._schema(body)
                elif op == 0x04:
                    self._channel(body)
                elif op == 0x05:
                    self._message(body)
                elif op == 0x06 and top:
                    if not self._chunk(body):
                        return False
            except (struct.error, ValueError, UnicodeDecodeError) as exc:
                self.problem = self.problem or f"damaged record at byte {pos} ({exc})"
                return False
            pos = body_end
            if top:
                self.good_bytes = pos
        return False

    @staticmethod
    def _string(body: memoryview, pos: int) -> tuple[str, int]:
        (n,) = struct.unpack_from("<I", body, pos)
        if pos + 4 + n > len(body):
            raise ValueError("string runs past its record")
        return bytes(body[pos + 4:pos + 4 + n]).decode(), pos + 4 + n

    def _schema(self, body: memoryview) -> None:
        (schema_id,) = struct.unpack_from("<H", body, 0)
        name, _ = self._string(body, 2)
        self.schemas[schema_id] = name

    def _channel(self, body: memoryview) -> None:
        channel_id, schema_id = struct.unpack_from("<HH", body, 0)
        topic, _ = self._string(body, 4)
        self.channels[channel_id] = (topic, self.schemas.get(schema_id, ""))

    def _message(self, body: memoryview) -> None:
        channel_id, _, log_time, _ = struct.unpack_from("<HIQQ", body, 0)
        channel = self.channels.get(channel_id)
        if channel is not None and (self.topics is None or channel[0] in self.topics):
            self.messages.append((channel[0], channel[1], log_time, bytes(body[22:])))

    def _chunk(self, body: memoryview) -> bool:
        _, _, uncompressed_size, crc = struct.unpack_from("<QQQI", body, 0)
        compression, pos = self._string(body, 28)
        (size,) = struct.unpack_from("<Q", body, pos)
        records = bytes(body[pos + 8:pos + 8 + size])
        if len(records) != size:
            raise ValueError("chunk data runs past its record")
        try:
            records = self._decompress(records, compression, uncompressed_size, crc)
        except (ReaderError, RuntimeError, ValueError, OSError, *DECOMPRESS_ERRORS) as exc:
            self.problem = f"damaged chunk ({type(exc).__name__}: {exc})"
            return False
        self._records(memoryview(records), 0, len(records), top=False)
        return True


# --- decoding ------------------------------------------------------------------------------------

def _stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def _decode_frames(images: list[tuple[int, bytes]], msgtype: str, topic: str, warnings: list[str],
                   frame_size: tuple[int, int] | None = None):
    store = photon_typestore()
    decode = decode_compressed if msgtype == COMPRESSED else decode_image
    if frame_size is not None:
        import cv2  # only here: most readers never resize
    skipped: Counter[str] = Counter()
    by_stamp: dict[int, np.ndarray] = {}
    shape = None
    for _, data in images:
        try:
            msg = store.deserialize_cdr(data, msgtype)
            frame = decode(msg)
        except Exception as exc:  # noqa: BLE001 - a damaged message must not lose the bag
            skipped[f"undecodable ({type(exc).__name__})"] += 1
            continue
        if frame is None:
            skipped[f"encoding {msg.encoding!r}"] += 1  # decode_compressed raises instead
            continue
        if frame_size is not None and frame.shape[1::-1] != tuple(frame_size):
            frame = cv2.resize(frame, tuple(frame_size), interpolation=cv2.INTER_AREA)
        shape = shape or frame.shape
        if frame.shape != shape:
            skipped[f"size {frame.shape[1]}x{frame.shape[0]} (not {shape[1]}x{shape[0]})"] += 1
            continue
        by_stamp.setdefault(_stamp_ns(msg.header), frame)  # a resend repeats the stamp: keep the first
    if skipped:
        warnings.append(f"{topic}: skipped {sum(skipped.values())} frame(s): " +
                        ", ".join(f"{n} {why}" for why, n in skipped.most_common()))
    order = sorted(by_stamp)
    frames = np.stack([by_stamp[s] for s in order]) if order else np.zeros((0, 0, 0, 3), np.uint8)
    return np.asarray(order, dtype=np.int64), frames


def _source(stamps: list[int], values: list[tuple[float, ...]], width: int):
    """Messages sorted by header stamp; among equal stamps, receive order is kept (stable sort)."""
    s = np.asarray(stamps, dtype=np.int64)
    v = np.asarray(values, dtype=np.float32).reshape(-1, width)
    order = np.argsort(s, kind="stable")
    return s[order], v[order]


def _deserialized(messages: list[tuple[int, bytes]], msgtype: str, topic: str | None, warnings: list[str]):
    """The messages deserialized, in receive order; a damaged one is skipped and counted in `warnings`."""
    store = photon_typestore()
    bad = 0
    for _, data in sorted(messages, key=lambda m: m[0]):
        try:
            msg = store.deserialize_cdr(data, msgtype)
            _stamp_ns(msg.header)
        except Exception:  # noqa: BLE001 - rosbags raises several kinds for a damaged payload
            bad += 1
            continue
        yield msg
    if bad:
        warnings.append(f"{topic}: skipped {bad} message(s) that do not deserialize as {msgtype} (damaged)")


def _commands(messages: list[tuple[int, bytes]], topic: str | None, warnings: list[str], bag: Path):
    stamps, values = [], []
    for msg in _deserialized(messages, DRIVE, topic, warnings):
        stamps.append(_stamp_ns(msg.header))
        values.append((msg.drive.steering_angle, msg.drive.speed))
    return _source(*_finite(stamps, values, topic, warnings, bag), 2)


def _vectors(messages, msgtype: str, topic: str, warnings: list[str], pick, bag: Path):
    if not messages:
        warnings.append(f"no {msgtype} messages on {topic}: its columns are zeros")
    stamps, values = [], []
    for msg in _deserialized(messages, msgtype, topic, warnings):
        stamps.append(_stamp_ns(msg.header))
        values.append(pick(msg))
    return _source(*_finite(stamps, values, topic, warnings, bag), 3)


def _finite(stamps: list[int], values: list[tuple[float, ...]], topic: str | None, warnings: list[str],
            bag: Path) -> tuple[list[int], list[tuple[float, ...]]]:
    """Drop messages with a NaN or infinite value (reported): a model trained on them learns NaN
    (`collect --noise inf` recorded NaN commands that trained to val_loss = nan). A topic whose
    every message is non-finite is not data at all: BagError."""
    keep = [i for i, v in enumerate(values) if all(np.isfinite(x) for x in v)]
    if len(keep) == len(values):
        return stamps, values
    if not keep:
        raise BagError(f"{bag}: all {len(values)} messages on {topic} hold non-finite values (NaN or inf)")
    warnings.append(f"{topic}: skipped {len(values) - len(keep)} of {len(values)} message(s) holding non-finite "
                    f"values (NaN or inf); the newest finite one before each frame is used")
    return [stamps[i] for i in keep], [values[i] for i in keep]


def _statuses(messages: list[tuple[int, bytes]], topic: str, warnings: list[str]) -> list[Any]:
    return sorted(_deserialized(messages, STATUS, topic, warnings), key=lambda m: _stamp_ns(m.header))


# --- alignment -----------------------------------------------------------------------------------

def _align(source, t: np.ndarray, lower: int | None) -> np.ndarray:
    """For each stamp in t: the newest source value stamped <= it (and > lower); zeros if none."""
    stamps, values = source
    out = np.zeros((len(t), values.shape[1]), dtype=np.float32)
    if len(stamps) == 0:
        return out
    idx = np.searchsorted(stamps, t, side="right") - 1
    ok = idx >= 0
    if lower is not None:
        ok &= stamps[np.maximum(idx, 0)] > lower
    out[ok] = values[idx[ok]]
    return out


def _episode_slices(stamps: np.ndarray, statuses: list[Any]):
    """(episode counter, seed, slice of frames) per episode; one episode without statuses."""
    if not statuses:
        return [(None, None, slice(0, len(stamps)))]
    status_stamps = np.asarray([_stamp_ns(s.header) for s in statuses], dtype=np.int64)
    idx = np.clip(np.searchsorted(status_stamps, stamps, side="right") - 1, 0, None)
    episode_of_frame = np.asarray([statuses[i].episode for i in idx])
    starts = [0, *np.flatnonzero(np.diff(episode_of_frame) != 0) + 1]
    ends = [*starts[1:], len(stamps)]
    return [(int(episode_of_frame[a]), int(statuses[idx[a]].seed), slice(a, b)) for a, b in zip(starts, ends)]


def _final(statuses: list[Any], episode: int | None) -> tuple[int, str]:
    mine = [s for s in statuses if s.episode == episode]
    if not mine:
        return 0, ""
    done = [s for s in mine if s.done and s.reason != "shutdown"]
    last = done[-1] if done else mine[-1]
    return int(max(s.step for s in mine)), (last.reason if done else "")


def _segments(t: np.ndarray) -> np.ndarray:
    if len(t) < 3:
        return np.zeros(len(t), dtype=np.int64)
    steps = np.diff(t)
    gaps = steps > GAP_FACTOR * np.median(steps)
    return np.concatenate([[0], np.cumsum(gaps)]).astype(np.int64)
