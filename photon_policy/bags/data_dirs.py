"""Every bag under the data directories a training or evaluation run was given, read once.

One bad bag among good ones (a damaged chunk, a recording with nothing in it, commands that
are all NaN) must not end a run of hours, and must not pass unseen either: it is skipped and
listed, and `strict` turns any skip into an error. A directory without any bag is an error
naming it (not a traceback).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from photon_policy.bags.reader import BagEpisode, BagError, list_bags, read_episodes


@dataclass
class DataRead:
    episodes: list[BagEpisode] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    """(bag, why) for every bag that could not be read."""


def read_data_dirs(data_dirs: Iterable[str | Path], strict: bool = False,
                   log: Callable[[str], None] = print, remap: dict[str, str] | None = None,
                   frame_size: tuple[int, int] | None = None) -> DataRead:
    """Read every bag under every directory; BagError for a directory without bags, for no readable
    bag at all, or (with `strict`) for any unreadable bag. Warnings and skips go to `log`.
    `remap`, `frame_size`: for foreign bags, see read_episodes."""
    out = DataRead()
    unused: Counter[str] = Counter()  # one line per skipped topic for the whole run, not per bag
    for data_dir in map(Path, data_dirs):
        bags = list_bags(data_dir)
        if not bags:
            raise BagError(f"{data_dir}: no bags under it (a bag is a directory with metadata.yaml or an .mcap/.db3 file)")
        for bag in bags:
            try:
                reads = read_episodes(bag, remap=remap, frame_size=frame_size)
            except BagError as exc:
                out.skipped.append((bag, str(exc)))
                log(f"[photon] skipped bag {bag}: {exc}")
                continue
            for warning in dict.fromkeys(w for read in reads for w in read.warnings):
                log(f"[photon] {bag.name}: {warning}")  # what the reader skipped or filled in, once per bag
            out.episodes.extend(reads)
            unused.update(f"{s.topic} ({s.msgtype}): {s.reason}" for s in reads[0].skipped)
    for topic, bags in sorted(unused.items()):
        log(f"[photon] not used, in {bags} bag(s): {topic}")
    if out.skipped:
        listing = "; ".join(f"{bag}: {why}" for bag, why in out.skipped)
        if strict or not out.episodes:
            what = "unreadable (--strict-data)" if strict else "read, none readable"
            raise BagError(f"{len(out.skipped)} bag(s) {what}: {listing}")
        log(f"[photon] {len(out.skipped)} bag(s) skipped, {len(out.episodes)} episode(s) read "
            "(--strict-data makes a skipped bag an error)")
    return out
