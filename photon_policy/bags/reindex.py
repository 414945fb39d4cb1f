"""`photon bag reindex DIR`: make a bag cut short (a recorder killed by SIGKILL, a full disk)
readable by rosbags and ROS tools again, as `ros2 bag reindex` does.

A killed recorder leaves its storage file without metadata.yaml, and an MCAP file without its
footer and summary, which rosbags refuses. Our reader reads such a bag record by record (and
says to run this); reindexing rewrites what it can read into a complete bag in the same
directory: every readable message, in its original order with its original receive time, a
fresh MCAP (chunk index, summary, footer) or sqlite3 file, and metadata.yaml. The damaged
storage file is kept beside it as `<name>.orig` (not read by any tool), unless `keep_original`
is False. QoS profiles recorded with the topics are not carried over (players then use their
defaults).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from rosbags.rosbag2 import Reader

from photon_policy.bags.reader import READ_ERRORS, BagError, McapScan
from photon_policy.bags.recorder import BagWriteError, BagWriter


@dataclass
class ReindexResult:
    path: Path
    messages: int = 0
    topics: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    originals: list[Path] = field(default_factory=list)
    """Where the damaged storage files were kept (empty if not kept or nothing was done)."""
    already_readable: bool = False


def readable(bag: Path) -> bool:
    """True if rosbags opens the bag and reads every message it lists."""
    if not (bag / "metadata.yaml").is_file():
        return False
    try:
        with Reader(bag) as reader:
            return sum(1 for _ in reader.messages()) == reader.message_count
    except READ_ERRORS:
        return False


def reindex(bag: Path | str, keep_original: bool = True, force: bool = False) -> ReindexResult:
    """Rewrite the bag in `bag` into a complete one; BagError if there is nothing to rewrite."""
    bag = Path(bag)
    if not bag.is_dir():
        raise BagError(f"{bag}: no such bag directory")
    result = ReindexResult(bag)
    if not force and readable(bag):
        result.already_readable = True
        return result
    mcaps, db3s = sorted(bag.glob("*.mcap")), sorted(bag.glob("*.db3"))
    if not mcaps and not db3s:
        raise BagError(f"{bag}: no .mcap or .db3 storage file to reindex")
    storage = "mcap" if mcaps else "sqlite3"
    messages = _read_mcaps(mcaps, result) if mcaps else _read_db3s(db3s, result)
    if not messages:
        raise BagError(f"{bag}: no readable message in {', '.join(p.name for p in mcaps or db3s)}")

    # Write beside the bag first: a failure part-way leaves the original untouched.
    staging = bag.parent / f".{bag.name}.reindex"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with BagWriter(staging / bag.name, storage, custom_data={"reindexed_by": "photon bag reindex"}) as out:
            for topic, msgtype, _, _ in messages:
                if not out.has_topic(topic):
                    try:
                        out.add_topic(topic, msgtype)
                    except BagWriteError as exc:
                        result.warnings.append(f"{topic}: not reindexed ({exc})")
            for topic, _, log_time, data in sorted(messages, key=lambda m: m[2]):  # stable: ties keep file order
                if out.has_topic(topic):
                    out.write(topic, log_time, data)
                    result.topics[topic] = result.topics.get(topic, 0) + 1
        old_files = [*mcaps, *db3s, *([bag / "metadata.yaml"] if (bag / "metadata.yaml").exists() else [])]
        for old in old_files:
            if keep_original and old.suffix != ".yaml":
                kept = old.with_name(old.name + ".orig")
                old.rename(kept)
                result.originals.append(kept)
            else:
                old.unlink()
        for new in (staging / bag.name).iterdir():
            new.rename(bag / new.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result.messages = sum(result.topics.values())
    return result


def _read_mcaps(files: list[Path], result: ReindexResult) -> list[tuple[str, str, int, bytes]]:
    messages = []
    for file in files:
        scan = McapScan(file, None)
        messages.extend(scan.messages)
        if scan.problem:
            result.warnings.append(f"{file.name}: {scan.problem}: kept {len(scan.messages)} messages from the "
                                   f"first {scan.good_bytes} of {scan.size} bytes")
    return messages


def _read_db3s(files: list[Path], result: ReindexResult) -> list[tuple[str, str, int, bytes]]:
    messages = []
    for file in files:
        try:
            with Reader(file) as reader:
                for connection, log_time, data in reader.messages():
                    messages.append((connection.topic, connection.msgtype, log_time, bytes(data)))
        except READ_ERRORS as exc:
            result.warnings.append(f"{file.name}: reading stopped after {len(messages)} messages: {exc}")
    return messages
