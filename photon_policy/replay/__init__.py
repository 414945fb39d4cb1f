"""Replay regression (`photon replay-test`): recorded bags fed to the real nodes in lockstep, their
outputs compared with pinned references (openpilot's process_replay, for this stack).

  suites.py      which bag feeds which nodes (test/replay/suites.yaml), ROS-free
  fields.py      a ROS message -> flat {field path: value} (images summarised), the tolerance table
  compare.py     references vs outputs: counts, order, per-field tolerances, a readable diff
  refs.py        the reference file: outputs, checkpoint and bag hashes, refused when they differ
  feeder.py      starts the nodes from their profiles and feeds a bag frame by frame (rclpy)
  runner.py      one replay-test run: every suite, compare or re-pin, the report
  cli.py         `photon replay-test`
"""
