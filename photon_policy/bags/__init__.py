"""rosbag2 recording, reading and playing: bags in, time-aligned EpisodeArrays (or a live graph) out.

  typestore.py      rosbags Typestore = ROS 2 Kilted + our interface packages (msgs/)
  recorder.py       BagWriter: a ROS-free rosbag2 writer (MCAP or sqlite3)
  recorder_node.py  node `recorder`: subscribes raw (serialized CDR) and writes a bag
  reader.py         read_episode(s): a bag (ours, or `ros2 bag record` on a car) -> EpisodeArrays
  collect.py        collect(): one bag per simulated expert episode, through the ROS loop
  player.py         the ROS-free core of `photon play`: load a bag, schedule it (rate, offset, loop, pause)
  player_node.py    node `player`: publishes a bag's CDR bytes with their recorded QoS, and /clock
  cli.py            `photon record`, `photon collect`, `photon play`, `photon bag reindex`
"""
