"""Driving policy: camera frames + IMU + control state in, the teleop driver's next command out.

The pure-PyTorch cores, free of ROS so tests and tools call them directly:

  model.py       PolicyConfig + DrivingPolicy (the world model's encoder and dynamics + a head),
                 frame_step: the per-frame compute over cached latents (frame_trunk, the frozen
                 part RL traces, then the head)
  dataset.py     behaviour-cloning samples cut from EpisodeArrays (labels: /teleop)
  checkpoint.py  self-describing policy checkpoints, loaded with weights_only=True only
  train.py       PolicyTrainConfig + train(): from a world model or from scratch; DDP, resumable
  safety.py      SafetyLayer: limits, rate limits, non-finite -> stop
  runtime.py     the policy over live streams: latent cache, input alignment, fallbacks
  export.py      eager / TorchScript backends and `photon export`
  node.py        policy_node (ROS): the only module here that imports rclpy
"""
