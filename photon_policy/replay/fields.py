"""What a replayed output message is compared by: a flat {field path: value} record, and the
tolerance of every field (the table reviewers read when a replay fails).

Images are not stored whole (a world-model prediction strip is 400 kB): `data` becomes the mean
of each channel over an 8 x 8 grid of blocks (`data.block_mean`), in uint8 units.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

import numpy as np

EXACT = 0.0
IGNORED = None
BLOCKS = 8


@dataclass(frozen=True)
class Rule:
    pattern: str          # fnmatch pattern over the flat field path
    tolerance: float | None  # absolute; 0.0 = exact; None = ignored
    why: str


# Per message type; the first matching rule wins. A field no rule names is compared exactly.
RULES: dict[str, tuple[Rule, ...]] = {
    "ackermann_msgs/msg/AckermannDriveStamped": (
        Rule("drive.steering_angle", 1e-4, "rad; float32 policy output after the safety layer"),
        Rule("drive.speed", 1e-3, "m/s; float32 policy output after the safety layer"),
        Rule("drive.*", 1e-6, "unused by the policy (zeros)"),
    ),
    "photon_msgs/msg/WorldModelState": (
        Rule("inference_time", IGNORED, "wall-clock compute time: differs run to run"),
        Rule("latent", 1e-3, "world-model features; CPU kernels may reorder float sums"),
        Rule("step_dt", 1e-9, "s, from the checkpoint's config"),
    ),
    "sensor_msgs/msg/Image": (
        Rule("data.block_mean", 0.5, "uint8 units: mean of each channel over an 8x8 grid of the image"),
    ),
    "photon_msgs/msg/Divergence": (
        Rule("policy.*", 1e-6, "copies of the fed float32 commands"),
        Rule("human.*", 1e-6, "copies of the fed float32 commands"),
        Rule("steering_error", 1e-6, "rad"),
        Rule("speed_error", 1e-5, "m/s"),
        Rule("score", 1e-5, "divergence score (units of the scales)"),
    ),
}
"""Header stamps, frame ids, sizes, encodings, ids and flags have no rule: they must be equal."""


def rule_for(type_name: str, field: str) -> Rule | None:
    for rule in RULES.get(type_name, ()):
        if fnmatch.fnmatchcase(field, rule.pattern):
            return rule
    return None


def tolerance_for(type_name: str, field: str) -> float | None:
    """Absolute tolerance of a field (0.0 exact, None ignored)."""
    rule = rule_for(type_name, field)
    return EXACT if rule is None else rule.tolerance


def flatten(msg: Any, type_name: str) -> dict[str, Any]:
    """A ROS message as {dotted field path: value}; number arrays as lists; images summarised."""
    out: dict[str, Any] = {}
    _walk(msg, "", out)
    if type_name == "sensor_msgs/msg/Image":
        out.pop("data")
        out["data.block_mean"] = image_block_means(msg)
    return out


def _walk(value: Any, path: str, out: dict[str, Any]) -> None:
    fields = getattr(value, "get_fields_and_field_types", None)
    if fields is not None:
        for name in fields():
            _walk(getattr(value, name), f"{path}.{name}" if path else name, out)
        return
    if isinstance(value, (bool, int, float, str)):
        out[path] = value
    elif isinstance(value, bytes):
        out[path] = list(value)
    else:  # arrays and sequences (numpy arrays, array.array, lists of numbers)
        out[path] = [v.item() if hasattr(v, "item") else v for v in value]


def image_block_means(msg: Any) -> list[float]:
    """Per-channel means over a BLOCKS x BLOCKS grid, row-major, rounded to 1/100 (uint8 units)."""
    channels = max(msg.step // max(msg.width, 1), 1)
    pixels = np.frombuffer(bytes(msg.data), np.uint8)[: msg.height * msg.width * channels]
    image = pixels.reshape(msg.height, msg.width, channels).astype(np.float64)
    rows = np.array_split(np.arange(msg.height), BLOCKS)
    cols = np.array_split(np.arange(msg.width), BLOCKS)
    means = [image[r[0]:r[-1] + 1, c[0]:c[-1] + 1].mean(axis=(0, 1)) for r in rows for c in cols]
    return [round(float(v), 2) for v in np.concatenate(means)]
