"""camera_calibration YAML (what `ros2 run camera_calibration cameracalibrator` writes, and what
camera_info_manager reads) -> CameraInfo fields, without ROS.

camera_info_url as camera_info_manager takes it: `file:///abs/path.yaml`, `package://pkg/rel/path.yaml`
(resolved with ament_index_python), or a plain path. Empty: an uncalibrated camera (only the
size is filled, as camera_info_manager does).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

MATRICES = {"camera_matrix": ("k", 9), "distortion_coefficients": ("d", None),
            "rectification_matrix": ("r", 9), "projection_matrix": ("p", 12)}


class CalibrationError(ValueError):
    """A calibration file that cannot be used; the message names the file and the field."""


@dataclass
class Calibration:
    width: int
    height: int
    camera_name: str = ""
    distortion_model: str = "plumb_bob"
    k: list[float] = field(default_factory=lambda: [0.0] * 9)
    d: list[float] = field(default_factory=list)
    r: list[float] = field(default_factory=lambda: [0.0] * 9)
    p: list[float] = field(default_factory=lambda: [0.0] * 12)
    calibrated: bool = False


def resolve_url(url: str) -> Path:
    if url.startswith("file://"):
        return Path(url[len("file://"):])
    if url.startswith("package://"):
        package, _, rel = url[len("package://"):].partition("/")
        try:
            from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
        except ImportError as exc:
            raise CalibrationError(f"{url}: ament_index_python is not installed") from exc
        try:
            return Path(get_package_share_directory(package)) / rel
        except PackageNotFoundError as exc:
            raise CalibrationError(f"{url}: package '{package}' not found") from exc
    return Path(url).expanduser()


def load_calibration(url: str, width: int, height: int) -> Calibration:
    """The calibration at `url`; CalibrationError when it cannot be read or does not add up."""
    if not url:
        return Calibration(width, height)
    path = resolve_url(url)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CalibrationError(f"camera_info_url {url}: {exc}") from exc
    if not isinstance(data, dict):
        raise CalibrationError(f"{path}: not a camera_calibration YAML mapping")
    try:
        cal = Calibration(int(data["image_width"]), int(data["image_height"]), str(data.get("camera_name", "")),
                          str(data.get("distortion_model", "plumb_bob")), calibrated=True)
        for key, (attr, n) in MATRICES.items():
            values = [float(v) for v in data[key]["data"]]
            if n is not None and len(values) != n:
                raise CalibrationError(f"{path}: {key} has {len(values)} values, expected {n}")
            setattr(cal, attr, values)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, CalibrationError):
            raise
        raise CalibrationError(f"{path}: missing or malformed field {exc}") from exc
    return cal
