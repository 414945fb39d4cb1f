"""What every trainer shares: one training loop and one checkpoint format.

  loop.py        the optimisation loop (AdamW, warmup + cosine, clipping, DDP, progress, resume order)
  trainer.py     a run: resume with the seed check, DDP wrapping, log.csv, validation, best/last
  checkpoint.py  self-describing checkpoints with a content hash, read with weights_only=True
"""
