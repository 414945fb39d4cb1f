"""BagWriter: a rosbag2 bag (metadata.yaml + one .mcap or .db3), written from serialized messages.

ROS-free: the recorder node hands it CDR bytes as they arrive; tests and tools can
write bags the same way. The result is the standard rosbag2 layout (format version
9), readable by `ros2 bag info` and by rosbags' Reader.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

from rosbags.interfaces import Connection, Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer, WriterError
from rosbags.typesys.store import Typestore

from photon_policy.bags.typestore import ensure_type, photon_typestore

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
INFINITE = QosTime(9223372036, 854775807)  # RMW_DURATION_INFINITE, as rosbag2 writes it


class BagWriteError(RuntimeError):
    """The bag cannot be created or written; the message names the path and the reason."""


def check_output_dir(path: Path) -> None:
    """Raise BagWriteError unless `path` is absent or an empty directory."""
    if path.is_dir() and any(path.iterdir()):
        raise BagWriteError(f"bag output {path} exists and is not empty; choose a new directory or remove it")
    if path.exists() and not path.is_dir():
        raise BagWriteError(f"bag output {path} exists and is not a directory")


class BagWriter:
    """Write one bag: `add_topic` once per topic, then `write` serialized messages, then `close`.

    MCAP chunks are zstd-compressed by default (`compress`): camera frames shrink about
    10x for a few milliseconds per 1 MiB chunk, and every MCAP reader (rosbag2's plugin,
    rosbags, Foxglove) reads them. sqlite3 bags are never compressed.
    """

    def __init__(self, path: Path | str, storage: str = "mcap", typestore: Typestore | None = None,
                 compress: bool = True, custom_data: dict[str, str] | None = None) -> None:
        self.path = Path(path)
        if storage not in STORAGES:
            raise BagWriteError(f"storage '{storage}' is not one of {sorted(STORAGES)}")
        check_output_dir(self.path)
        self.storage = storage
        self.typestore = typestore or photon_typestore()
        self.counts: Counter[str] = Counter()
        self.bytes_written = 0
        self._connections: dict[str, Connection] = {}
        if self.path.is_dir():
            self.path.rmdir()  # rosbags creates the directory itself and refuses an existing one
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer: Writer | None = Writer(self.path, version=9, storage_plugin=STORAGES[storage])
        self.compressed = compress and storage == "mcap"
        if self.compressed:
            self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        for key, value in {"recorded_by": "photon", **(custom_data or {})}.items():
            self._writer.set_custom_data(key, str(value))  # metadata.yaml custom_data
        try:
            self._writer.open()
        except (WriterError, OSError) as exc:
            self._writer = None
            raise BagWriteError(f"cannot create bag {self.path}: {exc}") from exc

    @property
    def topics(self) -> dict[str, str]:
        """topic -> message type of every topic added so far."""
        return {t: c.msgtype for t, c in self._connections.items()}

    @property
    def closed(self) -> bool:
        return self._writer is None

    def has_topic(self, topic: str) -> bool:
        return topic in self._connections

    def add_topic(self, topic: str, msgtype: str, offered_qos: Sequence[Qos] = ()) -> None:
        """Declare a topic of type `pkg/msg/Type` with its publishers' QoS; a second call is a no-op."""
        if topic in self._connections:
            return
        writer = self._open_writer()
        try:
            ensure_type(self.typestore, msgtype)
        except KeyError as exc:
            raise BagWriteError(f"{self.path}: cannot record {topic}: {exc.args[0]}") from None
        self._connections[topic] = writer.add_connection(topic, msgtype, typestore=self.typestore,
                                                         offered_qos_profiles=list(offered_qos))

    def write(self, topic: str, timestamp_ns: int, data: bytes | memoryview) -> None:
        """Append one serialized (CDR) message; `timestamp_ns` is the receive time the bag indexes by."""
        connection = self._connections.get(topic)
        if connection is None:
            raise BagWriteError(f"{self.path}: topic {topic} was not added before writing")
        self._open_writer().write(connection, int(timestamp_ns), data)
        self.counts[topic] += 1
        self.bytes_written += len(data)

    def close(self) -> None:
        """Finish the storage file and write metadata.yaml; safe to call twice."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def _open_writer(self) -> Writer:
        if self._writer is None:
            raise BagWriteError(f"bag {self.path} is already closed")
        return self._writer

    def __enter__(self) -> "BagWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
