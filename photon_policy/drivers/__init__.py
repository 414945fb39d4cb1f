"""Real-car nodes: camera driver, joystick driver, deadman teleop, keyboard teleop, command mux.

Each node is a thin ROS layer over a ROS-free core in this package (joystick.py, teleop.py,
mux.py, camera_source.py, calibration.py, vehicle.py) that the unit tests call directly.
Topic and parameter names follow the F1TENTH stack (ackermann_mux, joy_teleop) and
usb_cam / v4l2_camera, so the nodes drop into a car that already runs a VESC stack.
"""
