"""Evaluate a world-model checkpoint on held-out episodes.

Per horizon step: PSNR and SSIM of the model's open-loop predictions, of the
copy-last-frame baseline, and of the same model with every action zeroed (the
actions must matter). The steering counterfactual: from the same context, roll
out full-left, straight and full-right and measure which way the predicted
road turns (`steering_rotation`, `counterfactual_check`). Optionally a PNG
strip of context / truth / prediction and the CPU latency of one full
prediction.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from photon_policy.episode_data import EpisodeArrays
from world_model_node.checkpoint import load_model
from world_model_node.dataset import WindowDataset
from world_model_node.model import WorldModel, horizon_seconds, psnr


# ---- image metrics ----------------------------------------------------------------------

def _gaussian_1d(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return (g / g.sum()).float()


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """SSIM (Wang et al. 2004: 11x11 gaussian window, sigma 1.5, K1 0.01, K2 0.03, valid region)
    of images (..., C, H, W) in 0..data_range, averaged over channels and pixels -> (...)."""
    shape = pred.shape
    x = pred.reshape(-1, *shape[-3:]).float()
    y = target.reshape(-1, *shape[-3:]).float().to(x.device)
    g = _gaussian_1d().to(x)

    def band(n):  # (n, n - 10) matrix: valid 1-D convolution with g as a matmul (fast on CPU)
        m = torch.zeros(n, n - 10, dtype=x.dtype, device=x.device)
        for i in range(11):
            m[torch.arange(n - 10) + i, torch.arange(n - 10)] = g[i]
        return m

    mw, mh = band(shape[-1]), band(shape[-2])

    def blur(t):  # the separable 11x11 gaussian, valid region
        return mh.T @ (t @ mw)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x ** 2
    syy = blur(y * y) - mu_y ** 2
    sxy = blur(x * y) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))
    return s.mean(dim=(-3, -2, -1)).reshape(shape[:-3])


# ---- steering counterfactual -----------------------------------------------------------

def road_mask(frames: torch.Tensor) -> torch.Tensor:
    """Soft road-ness of frames (..., 3, H, W) in 0..1 -> (..., H, W) in 0..1.

    CarRacing's road is grey (~0.40-0.42 in every channel); grass is green (0.4, 0.8-0.9, 0.4),
    kerbs red/white, the HUD and the off-map background black. A pixel is road as far as it
    is grey (channel spread 0 -> 1, >= 0.15 -> 0) and of middle brightness (0.25..0.65);
    blurred road/grass mixtures count as neither."""
    mx, mn = frames.max(dim=-3).values, frames.min(dim=-3).values
    grey = (1 - (mx - mn) / 0.15).clamp(0, 1)
    mean = frames.mean(dim=-3)
    return grey * ((mean > 0.25) & (mean < 0.65)).float()


def road_bearing(frames: torch.Tensor, car_xy: tuple[float, float], min_radius: float = 10.0,
                 hud_rows: int = 12, min_road: float = 30.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean direction of the road as seen from the car: frames (B, 3, H, W) ->
    (bearing rad (B,), road pixel count (B,)). The bearing is that of the road-weighted mean
    unit vector from the car to every road pixel above the HUD and at least `min_radius`
    px from the car, measured from image-up towards image-right (clockwise on screen); NaN
    where fewer than `min_road` road pixels are seen."""
    mask = road_mask(frames)
    h, w = mask.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    dx, dy = xs - car_xy[0], car_xy[1] - ys  # dy > 0 = ahead (up)
    r = torch.sqrt(dx ** 2 + dy ** 2)
    keep = (r >= min_radius) & (ys < h - hud_rows)
    mask = mask * keep.to(mask)
    ux, uy = (dx / r.clamp_min(1e-6)), (dy / r.clamp_min(1e-6))
    vx, vy = (mask * ux).sum(dim=(-2, -1)), (mask * uy).sum(dim=(-2, -1))
    count = mask.sum(dim=(-2, -1))
    bearing = torch.atan2(vx, vy)
    return torch.where(count >= min_road, bearing, torch.full_like(bearing, math.nan)), count


def steering_rotation(straight: torch.Tensor, turned: torch.Tensor, car_xy: tuple[float, float]) -> torch.Tensor:
    """How far the road in `turned` frames (B, 3, H, W) has turned about the car relative to
    `straight` frames from the same context, degrees (B,), positive = clockwise on screen
    (the road ahead moving right: what steering left does to a camera that turns with the
    car). NaN where either frame shows too little road to measure."""
    b0, _ = road_bearing(straight, car_xy)
    b1, _ = road_bearing(turned, car_xy)
    d = torch.remainder(b1 - b0 + math.pi, 2 * math.pi) - math.pi
    return torch.rad2deg(d)


def road_shift_px(straight: torch.Tensor, turned: torch.Tensor, rows: tuple[int, int]) -> torch.Tensor:
    """Horizontal displacement (px, + = right) of the road centroid within `rows` (the view
    ahead of the car), turned minus straight; NaN where either has no road there."""
    def cx(f):
        m = road_mask(f)[..., rows[0]:rows[1], :]
        xs = torch.arange(m.shape[-1], dtype=m.dtype)
        n = m.sum(dim=(-2, -1))
        c = (m * xs).sum(dim=(-2, -1)) / n.clamp_min(1e-6)
        return torch.where(n >= 10, c, torch.full_like(c, math.nan))
    return cx(turned) - cx(straight)


def counterfactual_check(straight: torch.Tensor, left: torch.Tensor, right: torch.Tensor,
                         car_xy: tuple[float, float], min_deg: float = 1.0) -> dict[str, torch.Tensor]:
    """Steering counterfactual on predicted frames (B, 3, H, W) from the same contexts.

    Measured: the rotation of the road about the car in the full-left and full-right
    rollouts relative to the straight one (`steering_rotation`). A context passes when
    left turns the road clockwise by more than `min_deg` and right counter-clockwise by
    more than `min_deg`. A context whose straight rollout shows too little road to measure
    is indeterminate (excluded from the pass rate and counted); a turned rollout that
    shows too little road fails."""
    rot_l = steering_rotation(straight, left, car_xy)
    rot_r = steering_rotation(straight, right, car_xy)
    b0, _ = road_bearing(straight, car_xy)
    determinate = ~torch.isnan(b0)
    passed = determinate & torch.nan_to_num(rot_l, nan=0.0).gt(min_deg) \
        & torch.nan_to_num(rot_r, nan=0.0).lt(-min_deg)
    return {"pass": passed, "determinate": determinate, "rotation_left_deg": rot_l,
            "rotation_right_deg": rot_r}


# ---- evaluation --------------------------------------------------------------------------

COUNTERFACTUAL_STEP = 0
"""Horizon step whose frames the counterfactual pass rate is measured on: the first (0.1 s).
Full lock at speed turns the car by 90 degrees or more within 0.5 s, and a road bearing turned
that far reads as turned the other way (the road behind the car swings into view ahead), so
later steps measure the bearing's aliasing, not the model; they are reported beside it."""


def _car_xy(model: WorldModel) -> tuple[float, float]:
    s = model.config.image_size
    return s / 2, (model.config.pivot_y + 1) / 2 * s


@torch.inference_mode()
def evaluate(checkpoint: str | Path | WorldModel, episodes: list[EpisodeArrays],
             out_dir: str | Path | None = None, max_windows: int = 512, counterfactual_windows: int = 200,
             strip_samples: int = 4, batch_size: int = 32, skip_s: float = 1.0, device: str = "cpu",
             threads: int = 2, latency_runs: int = 0) -> dict:
    """Metrics of `checkpoint` on windows evenly spread over `episodes` (held-out ones).

    Returns (and with out_dir, writes eval.json + prediction_strip.png):
      horizons_s: seconds ahead of each predicted frame
      psnr, ssim: {"model", "copy_last", "zero_action"}: one mean per horizon
      counterfactual_pass_rate: share of determinate contexts passing counterfactual_check on the
        frames COUNTERFACTUAL_STEP ahead (counterfactual.pass_rate_by_horizon: every step)
      counterfactual: counts and mean rotations, num_windows, num_episodes
      latency_ms (latency_runs > 0): p50/p99 of one video_pred at batch 1 on CPU
    """
    if threads > 0:
        torch.set_num_threads(threads)
    model = checkpoint if isinstance(checkpoint, WorldModel) else load_model(checkpoint, map_location=device)[0]
    model = model.to(device).eval()
    c = model.config
    k, hz = c.context_steps, c.horizon_steps
    ds = WindowDataset(episodes, k, hz, c.model_dt, skip_s)
    if len(ds) == 0:
        raise ValueError("no evaluation windows in these episodes")
    pick = np.linspace(0, len(ds) - 1, min(max_windows, len(ds))).round().astype(int)
    cf_pick = set(pick[np.linspace(0, len(pick) - 1, min(counterfactual_windows, len(pick))).round()
                       .astype(int)].tolist())
    sums = {m: {n: torch.zeros(hz, dtype=torch.float64) for n in ("model", "copy_last", "zero_action")}
            for m in ("psnr", "ssim")}
    cf = {"pass": [], "determinate": [], "rotation_left_deg": [], "rotation_right_deg": [],
          "shift_left_px": [], "shift_right_px": []}
    cf_by_step = {"pass": [], "determinate": []}
    strip = []
    car = _car_xy(model)
    ahead_rows = (0, int(car[1]) - 8)
    for b0 in range(0, len(pick), batch_size):
        idx = pick[b0:b0 + batch_size]
        items = [ds[int(i)] for i in idx]
        frames = torch.stack([it["frames"] for it in items]).to(device)
        actions = torch.stack([it["actions"] for it in items]).to(device)
        x = model.to_float(frames)
        ctx, ctx_a, fut_a, truth = x[:, :k], actions[:, :k], actions[:, k:], x[:, k:]
        state = model.observe(ctx, ctx_a)
        pred = model.decode(model.imagine(state, fut_a))
        zero = model.video_pred(ctx, torch.zeros_like(ctx_a), torch.zeros_like(fut_a))
        copy = ctx[:, -1:].expand_as(truth)
        for name, p in (("model", pred), ("copy_last", copy), ("zero_action", zero)):
            sums["psnr"][name] += psnr(p, truth).double().sum(0).cpu()
            sums["ssim"][name] += ssim(p, truth).double().sum(0).cpu()
        sel = [j for j, i in enumerate(idx) if int(i) in cf_pick]
        if sel:
            st = _select(state, sel)
            speed = ctx_a[sel, -1, 1]
            rolls = []
            for steer in (0.0, c.steering_scale, -c.steering_scale):
                a = torch.stack([torch.full_like(speed, steer), speed], -1)[:, None].expand(-1, hz, 2)
                rolls.append(model.decode(model.imagine(st, a)).cpu())
            steps = [counterfactual_check(*(r[:, t] for r in rolls), car_xy=car) for t in range(hz)]
            cf_by_step["pass"].append(torch.stack([r["pass"] for r in steps], -1))
            cf_by_step["determinate"].append(torch.stack([r["determinate"] for r in steps], -1))
            res = steps[COUNTERFACTUAL_STEP]
            rolls = [r[:, COUNTERFACTUAL_STEP] for r in rolls]
            for key in ("pass", "determinate", "rotation_left_deg", "rotation_right_deg"):
                cf[key].append(res[key])
            cf["shift_left_px"].append(road_shift_px(rolls[0], rolls[1], ahead_rows))
            cf["shift_right_px"].append(road_shift_px(rolls[0], rolls[2], ahead_rows))
        if len(strip) < strip_samples:
            for j in range(min(strip_samples - len(strip), len(idx))):
                strip.append((ctx[j].cpu(), truth[j].cpu(), pred[j].cpu()))
    n = len(pick)
    cfc = {key: torch.cat(v) for key, v in cf.items()}
    det = cfc["determinate"]
    pass_by_step = torch.cat(cf_by_step["pass"]).sum(0)
    det_by_step = torch.cat(cf_by_step["determinate"]).sum(0)
    n_det = int(det.sum())

    def nanmean(t):
        t = t[det & ~torch.isnan(t)]
        return float(t.mean()) if len(t) else math.nan

    result = {
        "horizons_s": horizon_seconds(c),
        "psnr": {m: (v / n).tolist() for m, v in sums["psnr"].items()},
        "ssim": {m: (v / n).tolist() for m, v in sums["ssim"].items()},
        "counterfactual_pass_rate": float(cfc["pass"].sum()) / n_det if n_det else math.nan,
        "counterfactual": {
            "horizon_s": horizon_seconds(c)[COUNTERFACTUAL_STEP],
            "pass_rate_by_horizon": (pass_by_step / det_by_step.clamp_min(1)).tolist(),
            "contexts": int(len(det)), "determinate": n_det, "passed": int(cfc["pass"].sum()),
            "min_rotation_deg": 1.0,
            "mean_rotation_left_deg": nanmean(cfc["rotation_left_deg"]),
            "mean_rotation_right_deg": nanmean(cfc["rotation_right_deg"]),
            "mean_shift_left_px": nanmean(cfc["shift_left_px"]),
            "mean_shift_right_px": nanmean(cfc["shift_right_px"]),
        },
        "num_windows": n, "num_episodes": len(episodes),
        "checkpoint": str(checkpoint) if not isinstance(checkpoint, WorldModel) else None,
    }
    if latency_runs > 0:
        result["latency_ms"] = measure_latency(model.cpu(), runs=latency_runs, threads=threads)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "eval.json").write_text(json.dumps(result, indent=1))
        if strip:
            save_strip(strip, result["horizons_s"], out / "prediction_strip.png")
    return result


def _select(state, idx):
    from world_model_node.model import State
    return State(state.feat[idx], state.h[idx], state.anchor[idx], state.motion[idx])


@torch.inference_mode()
def measure_latency(model: WorldModel, runs: int = 200, threads: int = 2, warmup: int = 10) -> dict:
    """Wall time of one full prediction at batch 1 on CPU: encode the context frames,
    observe, roll out the horizon, decode every predicted frame (what the node does per
    camera frame); and of the incremental variant (the carried state absorbs only the
    newest frame). Milliseconds, p50/p99/mean."""
    if threads > 0:
        torch.set_num_threads(threads)
    model = model.eval()
    c = model.config
    g = torch.Generator().manual_seed(0)
    ctx = torch.randint(0, 256, (1, c.context_steps, 3, c.image_size, c.image_size), dtype=torch.uint8,
                        generator=g)
    ctx_a = torch.zeros(1, c.context_steps, 2)
    fut_a = torch.zeros(1, c.horizon_steps, 2)
    prev = model.observe(ctx[:, :-1], ctx_a[:, :-1])

    def full():
        model.video_pred(ctx, ctx_a, fut_a)

    def incremental():
        model.decode(model.imagine(model.observe(ctx[:, -1:], ctx_a[:, -1:], prev), fut_a))

    out = {}
    for name, fn in (("full", full), ("incremental", incremental)):
        for _ in range(warmup):
            fn()
        ts = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t) * 1e3)
        out[name] = {"p50": float(np.percentile(ts, 50)), "p99": float(np.percentile(ts, 99)),
                     "mean": float(np.mean(ts))}
    out["threads"] = torch.get_num_threads()
    return out


def save_strip(samples: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], horizons_s: list[float],
               path: str | Path) -> Path:
    """PNG: per sample three rows (context, truth, prediction); columns = context frames,
    then one per horizon step."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    k, hz = samples[0][0].shape[0], samples[0][1].shape[0]
    cols = max(k, hz)
    fig, axes = plt.subplots(3 * len(samples), cols, figsize=(1.4 * cols, 1.45 * 3 * len(samples)),
                             squeeze=False)
    for s, (ctx, truth, pred) in enumerate(samples):
        for r, (label, seq) in enumerate((("context", ctx), ("truth", truth), ("prediction", pred))):
            for col in range(cols):
                ax = axes[3 * s + r, col]
                ax.axis("off")
                if col < len(seq):
                    ax.imshow(seq[col].permute(1, 2, 0).clamp(0, 1).numpy())
                    if s == 0 and r == 1:
                        ax.set_title(f"+{horizons_s[col]:.1f} s", fontsize=8)
                    if col == 0:
                        ax.text(-8, 48, label, rotation=90, va="center", ha="right", fontsize=7)
    fig.tight_layout(pad=0.2)
    path = Path(path)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
