"""Shadow mode: the policy runs beside the driver; where they disagree is published and clipped.

  divergence.py  ROS-free core: pairing by camera stamp, the score, events (threshold, duration, hysteresis)
  clips.py       ring buffer of serialized messages (memory cap), clip bags (MCAP) and the index
  node.py        shadow_node: subscribes, publishes /shadow/divergence and /diagnostics, writes clips
  report.py      `photon shadow report DIR`: rates, plots, top events with thumbnails, JSON
  fleet.py       `photon shadow fleet`: seeded lockstep episodes, expert (perfect or not) at the wheel
  attribution.py who was heading off the road: the recorded drive vs the policy's commands replayed
"""
