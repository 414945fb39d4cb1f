"""Photon: camera frames in, Ackermann commands out. One subpackage per job:

  ros/        node plumbing shared by every node (no simulator, no torch)
  policy/     the driving policy: network, dataset, training, runtime, safety, export, node
  learning/   the one training loop and checkpoint format every trainer shares
  bags/       rosbag2 recording, reading (EpisodeArrays), collection of simulated episodes
  sim/        the simulator (Gymnasium CarRacing-v3) as a drive-by-wire vehicle, and its node
  expert/     the privileged expert driver (stands in for the human teleop driver in simulation)
  cli.py      the `photon` command; profiles.py + launcher.py run config/profiles.yaml

The world model lives beside this package, in world_model_node/. Only sim/ and expert/
import Gymnasium; a node that runs on a car never imports them.
"""
