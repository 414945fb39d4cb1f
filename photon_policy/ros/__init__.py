"""What every node shares, and nothing more: no simulator, no torch.

  node_runtime.py  parameters from config dataclasses, run_node (safe state on SIGINT/SIGTERM), timers
  stamps.py        builtin_interfaces/Time <-> seconds
  images.py        sensor_msgs/Image <-> RGB arrays (cv_bridge where installed, numpy otherwise)
  camera.py        CameraIntake: camera messages -> model-size RGB frames, drops counted by reason
  transforms.py    yaw <-> quaternion (tf_transformations where installed, transforms3d otherwise)
  diagnostics.py   one /diagnostics publisher per node, 1 Hz, from a report callback
"""
