"""World model: camera frames + applied commands in, future camera frames out.

The pure-PyTorch core, free of ROS so tests and tools call it directly:

  model.py       WorldModelConfig + WorldModel (encoder, action-conditioned dynamics, decoder,
                 video_pred, policy_features: the tensor interface a driving policy reuses)
  dataset.py     training windows cut from EpisodeArrays (photon_policy.bags.episode_arrays)
  checkpoint.py  self-describing checkpoints, loaded with weights_only=True only
  train.py       TrainConfig + train(): single process or DDP (torchrun), resumable
  evaluate.py    PSNR / SSIM per horizon against copy-last and zero-action baselines,
                 the steering counterfactual check, a PNG strip
"""
