"""camera_node: a V4L2 camera, a video file or a folder of images -> camera/image_raw.

Publishes (sensor-data QoS: best effort, as usb_cam; rviz must say Best Effort):
  camera/image_raw             sensor_msgs/Image rgb8, image_size, header.stamp = capture time,
                               frame_id = camera_frame_id
  camera/image_raw/compressed  sensor_msgs/CompressedImage JPEG (publish_compressed; encoded only
                               while someone subscribes)
  camera/camera_info           sensor_msgs/CameraInfo from camera_info_url, same stamp as the image
  /tf_static                   base_link -> camera_link -> camera_optical_frame from vehicle.yaml's
                               camera_mount (publish_mount_tf)
  /diagnostics                 1 Hz: real vs configured frame rate, frames, dropped frames by
                               reason, late frames, resized frames, source state and reopenings
Parameters (config/camera.yaml; usb_cam / v4l2_camera names): video_device (/dev/videoN, a
video file or a folder of images), image_size [w, h], framerate, pixel_format, camera_frame_id,
camera_name, camera_info_url, loop, publish_compressed, jpeg_quality, publish_mount_tf.

Transport: Fast DDS's default shared-memory segment cannot hold a 640x480 frame, which then goes
over UDP fragments and is often lost under best effort; main() points Fast DDS at
config/fastdds_camera.xml (a 16 MiB segment) unless FASTDDS_DEFAULT_PROFILES_FILE is set. Frames
larger than the segment in force are still published, and counted (`frames_over_transport_limit`).

Frames are read on a thread of their own (a device read blocks until the next frame). Files
and folders are paced at `framerate`; falling behind skips the missed slots (counted as
dropped, so the stream stays real-time). A frame of another size is resized to image_size
(counted); a frame that cannot be read is a counted drop. A source that cannot be opened, or
goes away (unplugged), is reported and reopened with backoff (0.5 s doubling to 5 s): never
a crash. A file or folder that ends (without loop) ends the stream; the node stays up.
"""
from __future__ import annotations

import os
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass

import cv2
from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from tf2_msgs.msg import TFMessage

from photon_policy.drivers.calibration import Calibration, CalibrationError, load_calibration
from photon_policy.drivers.camera_source import BadFrame, SourceEnded, SourceError, SourceLost, open_source
from photon_policy.drivers.vehicle import OPTICAL_ROTATION, CameraMount
from photon_policy.paths import config_dir
from photon_policy.ros.diagnostics import Diagnostics
from photon_policy.ros.images import image_message
from photon_policy.ros.node_runtime import declare_config, describe, run_node
from photon_policy.ros.transport import profiles_file, shm_segment_bytes

BACKOFF_MIN_S, BACKOFF_MAX_S = 0.5, 5.0


@dataclass
class CameraParams:
    video_device: str = describe("/dev/video0", "V4L2 device (/dev/videoN), a video file, or a folder of images")
    image_size: list = describe([640, 480], "[width, height] of the published images")
    framerate: float = describe(30.0, "frames per second asked of a device; the pace of files and folders")
    pixel_format: str = describe("mjpeg", "V4L2 pixel format asked of a device: mjpeg | yuyv | uyvy | grey")
    camera_frame_id: str = describe("camera_optical_frame", "header.frame_id of images and camera_info")
    camera_name: str = describe("camera", "name for logs and diagnostics")
    camera_info_url: str = describe("", "calibration YAML: file:///..., package://photon/config/..., or a path; "
                                        "empty = uncalibrated")
    loop: bool = describe(False, "start a video file or folder again at its end")
    publish_compressed: bool = describe(False, "also publish camera/image_raw/compressed (JPEG)")
    jpeg_quality: int = describe(80, "JPEG quality of the compressed images (1-100)")
    publish_mount_tf: bool = describe(True, "publish the camera mount (vehicle.yaml camera_mount.*) on /tf_static")

    def __post_init__(self) -> None:
        if len(self.image_size) != 2 or not all(isinstance(v, int) and v > 0 for v in self.image_size):
            raise ValueError(f"image_size={self.image_size} must be [width, height], positive integers")
        if not 0.0 < self.framerate <= 1000.0:
            raise ValueError(f"framerate={self.framerate} must be in (0, 1000]")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality={self.jpeg_quality} must be in 1..100")
        if not self.video_device:
            raise ValueError("video_device must name a device, a video file or a folder")


PARAMETERS = ((CameraParams, ""), (CameraMount, "camera_mount."))
"""Every parameter the node declares: (config dataclass, name prefix)."""


class CameraNode(Node):
    def __init__(self) -> None:
        super().__init__("camera")
        self.params = p = declare_config(self, CameraParams)
        self.mount = declare_config(self, CameraMount, prefix="camera_mount.")
        self.width, self.height = p.image_size
        self.period = 1.0 / p.framerate
        self.calibration = self._calibration()
        self.image_pub = self.create_publisher(Image, "camera/image_raw", qos_profile_sensor_data)
        self.info_pub = self.create_publisher(CameraInfo, "camera/camera_info", qos_profile_sensor_data)
        self.compressed_pub = (self.create_publisher(CompressedImage, "camera/image_raw/compressed",
                                                     qos_profile_sensor_data) if p.publish_compressed else None)
        if p.publish_mount_tf:
            self._publish_mount()
        self.frames = 0
        self.late = 0
        self.resized = 0
        self.transport_limit = shm_segment_bytes(profiles_file())
        self.over_transport_limit = 0
        self.drops: Counter[str] = Counter()
        self.openings = 0
        self.source_state = "opening"
        self.source_error = ""
        self.publish_times: deque[float] = deque(maxlen=600)
        self.last_frame: float | None = None
        self.diagnostics = Diagnostics(self, f"camera {p.camera_name}", self._report, hardware_id=p.video_device)
        self._running = True
        self._thread = threading.Thread(target=self._capture_loop, name="camera", daemon=True)
        self._thread.start()

    def _calibration(self) -> Calibration:
        p = self.params
        try:
            cal = load_calibration(p.camera_info_url, self.width, self.height)
        except CalibrationError as exc:  # camera_info_manager's behaviour: say so, publish uncalibrated
            self.get_logger().error(f"{exc}: publishing an uncalibrated camera_info")
            self.calibration_error = str(exc)
            return Calibration(self.width, self.height)
        self.calibration_error = ""
        if cal.calibrated and (cal.width, cal.height) != (self.width, self.height):
            self.calibration_error = (f"calibration is for {cal.width}x{cal.height}, images are "
                                      f"{self.width}x{self.height}")
            self.get_logger().warning(self.calibration_error)
        return cal

    def _publish_mount(self) -> None:
        qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.tf_pub = self.create_publisher(TFMessage, "/tf_static", qos)
        m = self.mount
        stamp = self.get_clock().now().to_msg()
        body, optical = TransformStamped(), TransformStamped()
        body.header.stamp = optical.header.stamp = stamp
        body.header.frame_id, body.child_frame_id = m.parent_frame, m.frame
        body.transform.translation.x, body.transform.translation.y, body.transform.translation.z = m.x, m.y, m.z
        q = body.transform.rotation
        q.x, q.y, q.z, q.w = m.quaternion()
        optical.header.frame_id, optical.child_frame_id = m.frame, m.optical_frame
        q = optical.transform.rotation
        q.x, q.y, q.z, q.w = OPTICAL_ROTATION
        self.tf_pub.publish(TFMessage(transforms=[body, optical]))

    # --- capture thread -----------------------------------------------------------------------------
    def _capture_loop(self) -> None:
        p = self.params
        backoff = BACKOFF_MIN_S
        while self._running:
            try:
                source = open_source(p.video_device, p.loop, (self.width, self.height), p.framerate, p.pixel_format)
            except (SourceError, cv2.error) as exc:
                self._source_down("unavailable", str(exc))
                backoff = self._wait(backoff)
                continue
            self.openings += 1
            self.source_state, self.source_error = "open", ""
            self.get_logger().info(f"{p.video_device} open ({'device' if source.paced_by_source else 'paced at'}"
                                   f" {p.framerate} frames/s)")
            try:
                self._stream(source)
                backoff = BACKOFF_MIN_S
            except SourceEnded as exc:
                self.source_state, self.source_error = "ended", str(exc)
                self.get_logger().info(f"{exc}: no more frames (set loop: true to play it again)")
                return
            except SourceLost as exc:
                self._source_down("lost", str(exc))
            finally:
                source.close()
            backoff = self._wait(backoff)

    def _stream(self, source) -> None:
        next_slot = time.monotonic()
        last_capture: float | None = None
        while self._running:
            if not source.paced_by_source:
                delay = next_slot - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                elif -delay > self.period:  # fell behind by whole frames: skip them, stay real-time
                    missed = int(-delay / self.period)
                    self.drops["behind_schedule"] += missed
                    next_slot += missed * self.period
                next_slot += self.period
            try:
                frame = source.read()
            except BadFrame as exc:
                self.drops["corrupt"] += 1
                self.get_logger().warning(f"dropped frame: {exc}", throttle_duration_sec=2.0)
                continue
            captured = time.monotonic()
            stamp = self.get_clock().now().to_msg()
            if last_capture is not None:
                gap = captured - last_capture
                if source.paced_by_source and gap > 1.5 * self.period:  # a device that skipped frames
                    self.drops["device_gap"] += max(int(round(gap / self.period)) - 1, 0)
                if not source.paced_by_source and captured - (next_slot - self.period) > 0.5 * self.period:
                    self.late += 1
                elif source.paced_by_source and gap > 1.5 * self.period:
                    self.late += 1
            last_capture = captured
            self._publish(frame, stamp)

    def _publish(self, frame, stamp) -> None:
        if frame.shape[:2] != (self.height, self.width):
            frame = cv2.resize(frame, (self.width, self.height), interpolation=cv2.INTER_AREA)
            self.resized += 1
        if frame.nbytes > self.transport_limit:
            self.over_transport_limit += 1
            self.get_logger().warning(
                f"{frame.nbytes} B frames exceed the {self.transport_limit} B shared-memory segment: best-effort "
                "subscribers may lose them whole (docs/ROBUSTNESS.md)", throttle_duration_sec=10.0)
        self.image_pub.publish(image_message(frame, stamp, self.params.camera_frame_id))
        self.info_pub.publish(self._camera_info(stamp))
        if self.compressed_pub is not None and self.compressed_pub.get_subscription_count() > 0:
            ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                                    [cv2.IMWRITE_JPEG_QUALITY, self.params.jpeg_quality])
            if ok:
                msg = CompressedImage(format="rgb8; jpeg compressed bgr8", data=jpeg.tobytes())
                msg.header.stamp, msg.header.frame_id = stamp, self.params.camera_frame_id
                self.compressed_pub.publish(msg)
        self.frames += 1
        self.last_frame = time.monotonic()
        self.publish_times.append(self.last_frame)

    def _camera_info(self, stamp) -> CameraInfo:
        c = self.calibration
        msg = CameraInfo(width=self.width, height=self.height, distortion_model=c.distortion_model,
                         d=c.d, k=c.k, r=c.r, p=c.p)
        msg.header.stamp, msg.header.frame_id = stamp, self.params.camera_frame_id
        return msg

    def _source_down(self, state: str, why: str) -> None:
        if why != self.source_error:
            self.get_logger().error(f"camera {state}: {why}; reopening with backoff")
        self.source_state, self.source_error = state, why

    def _wait(self, backoff: float) -> float:
        end = time.monotonic() + backoff
        while self._running and time.monotonic() < end:
            time.sleep(0.05)
        return min(backoff * 2.0, BACKOFF_MAX_S)

    # --- diagnostics, shutdown ----------------------------------------------------------------------
    def measured_rate(self) -> float:
        times = [t for t in self.publish_times if t > time.monotonic() - 2.0]
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0

    def _report(self) -> tuple[dict, list[str]]:
        rate = self.measured_rate()
        age = None if self.last_frame is None else time.monotonic() - self.last_frame
        values = {"source": self.source_state, "frames": self.frames, "rate_hz": f"{rate:.1f}",
                  "configured_rate_hz": self.params.framerate, "dropped": sum(self.drops.values()),
                  **{f"dropped_{k}": v for k, v in self.drops.items()}, "late": self.late,
                  "resized": self.resized, "openings": self.openings,
                  "transport_limit_bytes": self.transport_limit,
                  "frames_over_transport_limit": self.over_transport_limit,
                  "calibrated": self.calibration.calibrated,
                  "frame_age_s": "none" if age is None else f"{age:.3f}"}
        problems = []
        if self.source_state not in ("open", "ended"):
            problems.append(f"camera {self.source_state}: {self.source_error}")
        elif age is not None and age > max(1.0, 3 * self.period):
            problems.append(f"stalled: no frame for {age:.1f} s")
        elif self.frames > self.params.framerate * 2 and rate < 0.9 * self.params.framerate:
            problems.append(f"{rate:.1f} frames/s of {self.params.framerate}")
        if self.resized:
            problems.append(f"{self.resized} frames resized to {self.width}x{self.height}")
        if self.calibration_error:
            problems.append(self.calibration_error)
        if self.over_transport_limit:
            problems.append(f"{self.over_transport_limit} frames over the {self.transport_limit} B transport limit")
        return values, problems

    def publish_safe_state(self) -> None:
        """A camera commands nothing: stop capturing and say where it stood."""
        self._running = False
        self._thread.join(timeout=2.0)
        self.diagnostics.publish()

    def destroy_node(self) -> None:
        self._running = False
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        super().destroy_node()


def use_large_frame_transport() -> None:
    """Before rclpy starts: Fast DDS with a shared-memory segment that holds whole frames
    (config/fastdds_camera.xml says why), unless the user chose a profile file already."""
    if os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE") or os.environ.get("FASTRTPS_DEFAULT_PROFILES_FILE"):
        return
    path = config_dir() / "fastdds_camera.xml"
    if path.is_file():
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(path)


def main(args: list[str] | None = None) -> int:
    use_large_frame_transport()
    return run_node(CameraNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
