"""Linux joystick API (linux/joystick.h) without ROS: 8-byte `struct js_event` records in,
axes and buttons state out.

    struct js_event { __u32 time; __s16 value; __u8 type; __u8 number; };   // little endian

type is JS_EVENT_BUTTON (1) or JS_EVENT_AXIS (2), or'ed with JS_EVENT_INIT (0x80) for the
synthetic events the driver sends on open to describe the initial state. Axes are scaled to
[-1, 1] and negated, as ROS's joy_linux does (stick up / left = +1), so F1TENTH joy_teleop
configurations (axis 1 x speed, positive = forward) carry over unchanged.
"""
from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field

EVENT = struct.Struct("<IhBB")
EVENT_SIZE = EVENT.size  # 8
JS_EVENT_BUTTON = 0x01
JS_EVENT_AXIS = 0x02
JS_EVENT_INIT = 0x80
AXIS_MAX = 32767.0


def pack_event(kind: int, number: int, value: int, time_ms: int = 0) -> bytes:
    """One js_event as the kernel writes it (tests and benchmarks feed pipes with these)."""
    return EVENT.pack(time_ms & 0xFFFFFFFF, value, kind, number)


@dataclass
class JoystickState:
    """Axes and buttons as the events so far left them. Numbers beyond `max_axes` /
    `max_buttons` (a device with more controls than configured, or a corrupt stream) are
    counted in `ignored` and never grow the state: the Joy message keeps a fixed shape."""

    max_axes: int = 8
    max_buttons: int = 12
    deadzone: float = 0.05
    axes: list[float] = field(default_factory=list)
    buttons: list[int] = field(default_factory=list)
    ignored: Counter = field(default_factory=Counter)
    events: int = 0
    _pending: bytes = b""

    def __post_init__(self) -> None:
        self.axes = [0.0] * self.max_axes
        self.buttons = [0] * self.max_buttons

    def feed(self, data: bytes) -> int:
        """Apply every complete event in `data` (a partial one waits for the rest); returns how
        many changed the state."""
        data = self._pending + data
        whole = len(data) - len(data) % EVENT_SIZE
        self._pending = data[whole:]
        changed = 0
        for _time, value, kind, number in EVENT.iter_unpack(data[:whole]):
            changed += self.apply(kind, number, value)
        return changed

    def apply(self, kind: int, number: int, value: int) -> bool:
        self.events += 1
        kind &= ~JS_EVENT_INIT
        if kind == JS_EVENT_AXIS:
            if number >= self.max_axes:
                self.ignored["axis_out_of_range"] += 1
                return False
            scaled = -max(-1.0, min(1.0, value / AXIS_MAX))
            self.axes[number] = 0.0 if abs(scaled) < self.deadzone else scaled
            return True
        if kind == JS_EVENT_BUTTON:
            if number >= self.max_buttons:
                self.ignored["button_out_of_range"] += 1
                return False
            self.buttons[number] = 1 if value else 0
            return True
        self.ignored["unknown_event_type"] += 1
        return False

    def release_all(self) -> None:
        """A disconnected joystick holds nothing: every button up, every axis centred."""
        self.axes = [0.0] * self.max_axes
        self.buttons = [0] * self.max_buttons
        self._pending = b""
