"""Photon policy package: driving policy, shadow mode, reward model, RL, simulator bridge."""
