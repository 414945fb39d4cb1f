"""RL fine-tuning of the driving policy in simulation, scored by the learned reward (docs/REWARD_RL.md).

  env.py    CarRacing behind the drive-by-wire as a Gymnasium env: the action is the policy's command
  actor.py  the policy acting on a batch of envs through the node's own PolicyRuntime, its frozen
            trunk traced with TorchScript and batched over the envs
  ppo.py    PPO with a KL anchor to the starting policy, CleanRL style; torchrun DDP
  cli.py    `photon train rl`
"""
