"""A reward model of good driving, learned from the shadow fleet's logs (docs/REWARD_RL.md).

  data.py      shadow bags (clips, drives) -> per-frame streams; the clip index checked bag by bag
  features.py  the frozen world model's features per model step (what the policy reads), cached
  model.py     the reward network and its self-describing checkpoint (bound to the world model's hash)
  designs.py   the published designs (RLIF, PVP, preference) as samples + loss
  train.py     `photon train reward`: a Task for the shared training loop
  evaluate.py  `photon eval reward`: rank correlation with the simulator's return, clip-pair accuracy
"""
