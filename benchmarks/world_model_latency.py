"""World-model node speed: full prediction per camera frame, as world_model_node runs it.

Per frame: fold the frame into the carried state when a model step is due, imagine
the horizon for the three candidates (straight/left/right) and decode all frames,
plus the policy feature vector, i.e. the node's `rate_hz: 0` path. Beside it,
the bare `video_pred` at batch 1 (re-encoding the whole context every time), the
model's textbook use, to show what the streaming state saves. Frames come from
recorded bags when --data is given, else from the simulator with the expert
driving. Prints JSON. Targets: >= 20 Hz, p99 <= 50 ms on the 2-core CPU.

    .venv/bin/python benchmarks/world_model_latency.py [--ckpt RUN] [--data DIR] [--frames 2000]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from world_model_node.checkpoint import load_model
from world_model_node.cli import resolve_checkpoint
from world_model_node.predictor import StreamingPredictor, candidates


def simulated_frames(n: int) -> tuple[np.ndarray, np.ndarray]:
    from photon_policy.expert.in_process import drive_frames
    return drive_frames(seed=1234, steps=n)


def bag_frames(data: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    from photon_policy.learning.loop import load_episodes
    frames, commands = [], []
    for episode in load_episodes(data):
        frames.append(episode.frames)
        commands.append(episode.commands)
        if sum(len(f) for f in frames) >= n:
            break
    return np.concatenate(frames)[:n], np.concatenate(commands)[:n]


def percentiles(ms: list[float]) -> dict:
    a = np.array(ms)
    return {"p50_ms": round(float(np.percentile(a, 50)), 2), "p99_ms": round(float(np.percentile(a, 99)), 2),
            "mean_ms": round(float(a.mean()), 2), "hz": round(1000.0 / float(a.mean()), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    ckpt = resolve_checkpoint(args.ckpt)
    model, _ = load_model(ckpt)
    c = model.config
    frames, commands = bag_frames(args.data, args.frames) if args.data else simulated_frames(args.frames)

    predictor = StreamingPredictor(model)
    node_ms = []
    for k, (frame, command) in enumerate(zip(frames, commands)):
        started = time.perf_counter()
        predictor.push(frame, 0.02 * k, command)
        if predictor.ready:
            rows = np.array([[[cand.steering_angle, command[1]]] * c.horizon_steps for cand in candidates(0.4)],
                            dtype=np.float32)
            predictor.predict(rows)
            predictor.features()
            node_ms.append((time.perf_counter() - started) * 1e3)

    stride = round(c.model_dt / 0.02)
    bare_ms = []
    with torch.inference_mode():
        for k in range(c.context_steps * stride, len(frames), stride):
            idx = k - stride * np.arange(c.context_steps)[::-1]
            context = torch.from_numpy(frames[idx]).permute(0, 3, 1, 2)[None]
            acts = torch.from_numpy(commands[idx].astype(np.float32))[None]
            future = acts[:, -1:].expand(1, c.horizon_steps, 2)
            started = time.perf_counter()
            model.video_pred(context, acts, future)
            bare_ms.append((time.perf_counter() - started) * 1e3)

    print(json.dumps({
        "benchmark": "world_model_latency",
        "checkpoint": str(ckpt), "threads": args.threads, "cpus": os.cpu_count(),
        "frames": len(frames), "source": str(args.data) if args.data else "simulator",
        "horizon_s": round(c.horizon_steps * c.model_dt, 3),
        "node_per_frame_3_candidates": {"predictions": len(node_ms), **percentiles(node_ms)},
        "bare_video_pred_batch1": {"calls": len(bare_ms), **percentiles(bare_ms)},
    }, indent=2))


if __name__ == "__main__":
    main()
