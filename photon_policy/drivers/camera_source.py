"""Where camera frames come from, without ROS: a V4L2 device, a video file, or a folder of images.

`open_source(video_device, ...)` picks by what the path is: /dev/videoN (or a bare index)
is a V4L2 device through OpenCV, a directory is a folder of images (sorted by name), any
other path a video file. `read()` returns an (H, W, 3) uint8 RGB frame, or raises:
  SourceLost   the device went away (the node reopens it with backoff)
  SourceEnded  a file or folder ended without loop (the node stops capturing)
  BadFrame     this one frame is unusable (corrupt, empty, wrong shape): a counted drop
Files and folders are paced by the node at `framerate`; a device paces itself.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff")
# usb_cam / v4l2_camera pixel_format values -> the V4L2 fourcc asked of the device.
FOURCC = {"mjpeg": "MJPG", "mjpg": "MJPG", "yuyv": "YUYV", "yuyv2rgb": "YUYV", "uyvy": "UYVY",
          "rgb24": "RGB3", "bgr24": "BGR3", "grey": "GREY", "mono8": "GREY"}


class SourceError(RuntimeError):
    """The source cannot be opened; the message says why."""


class SourceLost(RuntimeError):
    """The source stopped delivering (unplugged, stream ended)."""


class SourceEnded(SourceLost):
    """A video file or folder reached its end (without loop): nothing to reopen."""


class BadFrame(ValueError):
    """One unusable frame."""


def check_frame(frame: object) -> np.ndarray:
    """An OpenCV BGR(A)/grey frame -> (H, W, 3) uint8 RGB, or BadFrame naming what is wrong."""
    if not isinstance(frame, np.ndarray) or frame.size == 0:
        raise BadFrame("empty frame")
    if frame.dtype != np.uint8:
        raise BadFrame(f"frame of dtype {frame.dtype}, expected uint8")
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise BadFrame(f"frame of shape {frame.shape}")
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB if frame.shape[2] == 3 else cv2.COLOR_BGRA2RGB)


class VideoSource:
    """A V4L2 device or a video file through cv2.VideoCapture."""

    def __init__(self, path: str, device: bool, loop: bool, size: tuple[int, int], framerate: float,
                 pixel_format: str) -> None:
        self.path, self.device, self.loop = path, device, loop
        self.paced_by_source = device
        if device:
            index = _device_index(path)
            self.cap = cv2.VideoCapture(index if index is not None else path, cv2.CAP_V4L2)
        else:
            if not Path(path).is_file():
                raise SourceError(f"no such video file or device: {path}")
            self.cap = cv2.VideoCapture(path)
        if not self.cap.isOpened():
            raise SourceError(f"cannot open {'device' if device else 'video file'} {path}")
        if device:  # requests; the device may answer with something else (frames are then resized)
            fourcc = FOURCC.get(pixel_format.lower())
            if fourcc:
                self.cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*fourcc))
            self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
            self.cap.set(cv2.CAP_PROP_FPS, framerate)
            self.cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a queue of old ones

    def read(self) -> np.ndarray:
        ok, frame = self.cap.read()
        if not ok:
            if self.device:
                raise SourceLost(f"device {self.path} delivered no frame")
            if not self.loop:
                raise SourceEnded(f"end of video file {self.path}")
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self.cap.read()
            if not ok:
                raise SourceLost(f"video file {self.path} has no readable frame")
        return check_frame(frame)

    def close(self) -> None:
        self.cap.release()


class FolderSource:
    """Every image in a folder, by name; unreadable files are bad frames, not the end."""

    paced_by_source = False

    def __init__(self, path: str, loop: bool) -> None:
        self.files = sorted(p for p in Path(path).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise SourceError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
        self.path, self.loop, self.index = path, loop, 0

    def read(self) -> np.ndarray:
        if self.index >= len(self.files):
            if not self.loop:
                raise SourceEnded(f"end of image folder {self.path}")
            self.index = 0
        file = self.files[self.index]
        self.index += 1
        frame = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
        if frame is None:
            raise BadFrame(f"{file.name} does not decode")
        return check_frame(frame)

    def close(self) -> None:
        pass


def _device_index(path: str) -> int | None:
    match = re.fullmatch(r"(?:/dev/video)?(\d+)", path)
    return int(match.group(1)) if match else None


def is_device(path: str) -> bool:
    return path.startswith("/dev/") or path.isdigit()


def open_source(path: str, loop: bool = False, size: tuple[int, int] = (640, 480), framerate: float = 30.0,
                pixel_format: str = "mjpeg"):
    if is_device(path):
        if not path.isdigit() and not os.path.exists(path):
            raise SourceError(f"no such device: {path}")
        return VideoSource(path, True, loop, size, framerate, pixel_format)
    if Path(path).is_dir():
        return FolderSource(path, loop)
    return VideoSource(path, False, loop, size, framerate, pixel_format)
