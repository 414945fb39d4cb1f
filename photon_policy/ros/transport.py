"""What Fast DDS delivers whole under best effort: a publisher's shared-memory segment.

A sample larger than the publisher's shared-memory segment goes over UDP in ~64 KiB fragments
instead; under best effort (every camera topic here) one lost fragment loses the frame, and no
subscriber hears of it. Fast DDS's segment is 512 KiB unless a profile file sets another
(config/fastdds_camera.xml: 16 MiB). Publishers compare their frames with this figure and count
the ones above it (docs/ROBUSTNESS.md, "Large frames").
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

FASTDDS_DEFAULT_SHM_SEGMENT_BYTES = 512 * 1024
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")


def profiles_file() -> Path | None:
    """The Fast DDS XML profile file this process starts with, if any."""
    for name in PROFILE_VARIABLES:
        if os.environ.get(name):
            return Path(os.environ[name])
    return None


def shm_segment_bytes(path: Path | None) -> int:
    """The shared-memory segment size the profile file gives its SHM transport; Fast DDS's default
    without a file, or when the file cannot be read or sets no size."""
    if path is None:
        return FASTDDS_DEFAULT_SHM_SEGMENT_BYTES
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return FASTDDS_DEFAULT_SHM_SEGMENT_BYTES
    for element in root.iter():
        if _tag(element) != "transport_descriptor":
            continue
        fields = {_tag(child): (child.text or "").strip() for child in element}
        if fields.get("type") == "SHM" and fields.get("segment_size", "").isdigit():
            return int(fields["segment_size"])
    return FASTDDS_DEFAULT_SHM_SEGMENT_BYTES


def _tag(element: ET.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]  # without the XML namespace
