"""rosbag2 recording and reading: bags in, time-aligned EpisodeArrays out.

  typestore.py      rosbags Typestore = ROS 2 Kilted + our interface packages (msgs/)
  recorder.py       BagWriter: a ROS-free rosbag2 writer (MCAP or sqlite3)
  recorder_node.py  node `recorder`: subscribes raw (serialized CDR) and writes a bag
  reader.py         read_episode(s): a bag (ours, or `ros2 bag record` on a car) -> EpisodeArrays
  collect.py        collect(): one bag per simulated expert episode, through the ROS loop
  commands.py       `photon record` and `photon collect`
"""
