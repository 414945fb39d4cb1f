"""Evaluate a world-model checkpoint on held-out episodes.

Per horizon step: PSNR and SSIM of the model's open-loop predictions, of the
copy-last-frame baseline, and of the same model with every action zeroed (the
actions must matter). The steering counterfactual: from the same context, roll
out full-left, straight and full-right and measure which way the predicted
road turns (`steering_rotation`, `counterfactual_check`).

Where the held-out bags are lockstep episodes of our simulator, the simulator
itself says what full left and full right would have shown: each context's
episode is replayed to that frame and branched (`photon_policy.sim.replay`).
The same check then runs on the simulator's own frames, and the model is held
to it where the simulator passes it: a car sliding off the road turns no
differently under full left than under full right, and a model that showed it
turning would be wrong. The model's branch predictions are also scored
against the simulator's branch frames (PSNR). Bags from anywhere else (a real
car) have no such ground truth; the check then counts every context whose
straight rollout shows road.

Optionally PNG strips (context / truth / prediction; the counterfactual
branches) and the CPU latency of one full prediction.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from photon_policy.bags.episode_arrays import EpisodeArrays
from world_model_node.checkpoint import load_model
from world_model_node.dataset import WindowDataset
from world_model_node.model import WorldModel, horizon_seconds, psnr


COUNTERFACTUAL_CONTEXTS = 200
"""Contexts of the steering counterfactual (each branched in the simulator when it gives ground truth)."""


class NoGroundTruth(RuntimeError):
    """The simulator cannot give these episodes' counterfactual ground truth (no seed, or its replay
    does not reproduce the recorded frames); the message says why."""


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

BRANCHES = ("straight", "left", "right")
"""The counterfactual rollouts, in order: steering 0, +max (left), -max (right)."""


def _car_xy(model: WorldModel) -> tuple[float, float]:
    s = model.config.image_size
    return s / 2, (model.config.pivot_y + 1) / 2 * s


def simulator_replays(episodes: list[EpisodeArrays], ground_truth: str = "auto",
                      dbw_config=None) -> tuple[dict | None, str]:
    """Replays of the episodes for the simulator's counterfactual ground truth, and why there are
    none: ground_truth "none" skips it, "simulator" requires it, "auto" uses it where every
    episode carries a simulator seed (each replay is checked frame for frame as it branches).
    The simulator (Gymnasium, Box2D) is imported only here: evaluating a real car's bags needs neither."""
    if ground_truth not in ("auto", "simulator", "none"):
        raise ValueError(f"ground_truth must be auto, simulator or none, not {ground_truth!r}")
    if ground_truth == "none":
        return None, "not asked for"
    unseeded = [e.name for e in episodes if e.seed is None]
    if unseeded:
        why = f"episode(s) {', '.join(unseeded[:3])} carry no simulator seed"
        if ground_truth == "simulator":
            raise NoGroundTruth(f"no simulator ground truth: {why}")
        return None, why
    from photon_policy.sim.replay import EpisodeReplay

    if dbw_config is None:
        from photon_policy.expert.in_process import shipped_configs
        dbw_config = shipped_configs()[1]
    return {i: EpisodeReplay(e.seed, e.commands, e.frames, dbw_config) for i, e in enumerate(episodes)}, ""


@torch.inference_mode()
def evaluate(checkpoint: str | Path | WorldModel, episodes: list[EpisodeArrays],
             out_dir: str | Path | None = None, max_windows: int = 512,
             counterfactual_windows: int = COUNTERFACTUAL_CONTEXTS,
             strip_samples: int = 4, batch_size: int = 32, skip_s: float = 1.0, device: str = "cpu",
             threads: int = 2, latency_runs: int = 0, ground_truth: str = "auto", progress: bool = False) -> dict:
    """Metrics of `checkpoint` on windows evenly spread over `episodes` (held-out ones).

    Returns (and with out_dir, writes prediction_strip.png, and counterfactual_strip.png when the
    simulator gave ground truth; result["files"] lists what was written):
      horizons_s: seconds ahead of each predicted frame
      psnr, ssim: {"model", "copy_last", "zero_action"}: one mean per horizon
      counterfactual_pass_rate: on the frames COUNTERFACTUAL_STEP ahead, the share of contexts
        passing counterfactual_check among those where the simulator's own branches pass it
        (ground truth "simulator"), or among those whose straight rollout shows road ("none")
      counterfactual: counts, rates per horizon, mean rotations, the simulator's own figures and
        the branch PSNRs (with ground truth), num_windows, num_episodes
      latency_ms (latency_runs > 0): p50/p99 of one video_pred at batch 1 on CPU
    A replay that does not reproduce its bag raises NoGroundTruth, except under "auto", which
    then evaluates without ground truth and says why in counterfactual.ground_truth_note.
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
    strip_pick = set(pick[np.linspace(0, len(pick) - 1, min(strip_samples, len(pick))).round().astype(int)].tolist())
    replays, truth_note = simulator_replays(episodes, ground_truth)
    bar = None
    if progress and replays is not None:
        from tqdm import tqdm
        bar = tqdm(total=len(cf_pick), desc="simulator branches", unit="context", leave=False)
    try:
        acc = _Accumulator(hz)
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
            acc.add_predictions({"model": pred, "copy_last": ctx[:, -1:].expand_as(truth), "zero_action": zero},
                                truth)
            sel = [j for j, i in enumerate(idx) if int(i) in cf_pick]
            if sel:
                speed = ctx_a[sel, -1, 1]
                steerings = (0.0, c.steering_scale, -c.steering_scale)
                st = _select(state, sel)
                rolls = torch.stack([model.decode(model.imagine(st, torch.stack(
                    [torch.full_like(speed, steer), speed], -1)[:, None].expand(-1, hz, 2))).cpu()
                    for steer in steerings], 1)  # (S, 3 branches, hz, 3, H, W)
                sim = None
                if replays is not None:
                    try:
                        sim = _simulator_branches(ds, [int(idx[j]) for j in sel], replays, steerings, speed.cpu(), hz)
                    except NoGroundTruth as err:
                        if ground_truth == "simulator":
                            raise
                        replays, truth_note = None, str(err)
                        acc.drop_simulator()
                    if bar is not None:
                        bar.update(len(sel))
                acc.add_counterfactual(rolls, sim, _car_xy(model), ctx[sel].cpu())
            acc.add_strip(*(t[[j for j, i in enumerate(idx) if int(i) in strip_pick]] for t in (ctx, truth, pred)))
    finally:
        if bar is not None:
            bar.close()
    result = acc.result(c, len(pick), len(episodes))
    result["counterfactual"]["ground_truth"] = "simulator" if replays is not None else "none"
    if truth_note:
        result["counterfactual"]["ground_truth_note"] = truth_note
    result["checkpoint"] = str(checkpoint) if not isinstance(checkpoint, WorldModel) else None
    if latency_runs > 0:
        result["latency_ms"] = measure_latency(model.cpu(), runs=latency_runs, threads=threads)
    result["files"] = []
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if acc.strip:
            result["files"].append(str(save_strip(acc.strip, result["horizons_s"], out / "prediction_strip.png")))
        if acc.branch_strip:
            result["files"].append(str(save_counterfactual_strip(acc.branch_strip, out / "counterfactual_strip.png")))
    return result


def _simulator_branches(ds: WindowDataset, windows: list[int], replays: dict,
                        steerings: tuple[float, ...], speeds: torch.Tensor, hz: int) -> torch.Tensor:
    """The simulator's frames for each window's branches: (S, len(steerings), hz, 3, H, W) in 0..1,
    branched at the window's last context frame, each steering held with that window's speed."""
    from photon_policy.sim.replay import ReplayMismatch

    out = []
    for j, i in enumerate(windows):
        w = ds.index[i]
        last_context = int(ds.frame_indices(i)[ds.steps - hz - 1])
        try:
            frames = replays[w.episode].branch(last_context, [(s, float(speeds[j])) for s in steerings], hz,
                                               ds.strides[w.episode])
        except ReplayMismatch as err:
            raise NoGroundTruth(str(err)) from err
        out.append(torch.from_numpy(frames).permute(0, 1, 4, 2, 3))
    return torch.stack(out).float() / 255.0


class _Accumulator:
    """Running sums of evaluate's metrics over batches."""

    def __init__(self, hz: int) -> None:
        self.hz = hz
        self.sums = {m: {n: torch.zeros(hz, dtype=torch.float64) for n in ("model", "copy_last", "zero_action")}
                     for m in ("psnr", "ssim")}
        self.checks: dict[str, list[dict]] = {"model": [], "simulator": []}
        self.branch_psnr = {f"{b}/{p}": torch.zeros(hz, dtype=torch.float64)
                            for b in BRANCHES for p in ("model", "straight_prediction")}
        self.branch_count = 0
        self.strip: list = []
        self.branch_strip: list = []

    def add_predictions(self, preds: dict[str, torch.Tensor], truth: torch.Tensor) -> None:
        for name, p in preds.items():
            self.sums["psnr"][name] += psnr(p, truth).double().sum(0).cpu()
            self.sums["ssim"][name] += ssim(p, truth).double().sum(0).cpu()

    def add_counterfactual(self, rolls: torch.Tensor, sim: torch.Tensor | None, car_xy, ctx: torch.Tensor) -> None:
        """rolls and sim: (S, branch, hz, 3, H, W) (sim None without ground truth)."""
        def checks(frames):
            return [counterfactual_check(*(frames[:, b, t] for b in range(3)), car_xy=car_xy) for t in range(self.hz)]
        self.checks["model"].append(checks(rolls))
        if sim is None:
            return
        self.checks["simulator"].append(checks(sim))
        for b, name in enumerate(BRANCHES):
            self.branch_psnr[f"{name}/model"] += psnr(rolls[:, b], sim[:, b]).double().sum(0)
            self.branch_psnr[f"{name}/straight_prediction"] += psnr(rolls[:, 0], sim[:, b]).double().sum(0)
        self.branch_count += len(rolls)
        if len(self.branch_strip) < 3:
            self.branch_strip.append((ctx[0, -1], sim[0, :, COUNTERFACTUAL_STEP], rolls[0, :, COUNTERFACTUAL_STEP]))

    def add_strip(self, ctx, truth, pred) -> None:
        for j in range(len(ctx)):
            self.strip.append((ctx[j].cpu(), truth[j].cpu(), pred[j].cpu()))

    def drop_simulator(self) -> None:
        """Forget the simulator's share (its replay failed part way); the rest stays."""
        self.checks["simulator"] = []
        self.branch_psnr = {key: v.zero_() for key, v in self.branch_psnr.items()}
        self.branch_count = 0
        self.branch_strip = []

    def _stacked(self, who: str, key: str) -> torch.Tensor:
        """(contexts, hz) of one check field."""
        return torch.cat([torch.stack([step[key] for step in batch], -1) for batch in self.checks[who]])

    def result(self, c, n: int, num_episodes: int) -> dict:
        cf_step = COUNTERFACTUAL_STEP
        m_pass, m_det = self._stacked("model", "pass"), self._stacked("model", "determinate")
        rot = {side: self._stacked("model", f"rotation_{side}_deg") for side in ("left", "right")}

        def rate(passed, among):
            return (passed & among).sum(0).double() / among.sum(0).clamp_min(1)

        def mean_rotation(r, among):
            r = torch.where(among, r, torch.full_like(r, math.nan))[:, cf_step]
            return float(r.nanmean()) if (~torch.isnan(r)).any() else math.nan

        counterfactual = {
            "horizon_s": horizon_seconds(c)[cf_step],
            "min_rotation_deg": 1.0,
            "contexts": int(len(m_pass)),
            "model_pass_rate_where_road_visible": float(rate(m_pass, m_det)[cf_step]),
            "model_pass_rate_where_road_visible_by_horizon": rate(m_pass, m_det).tolist(),
            "road_visible": int(m_det[:, cf_step].sum()),
            "mean_rotation_left_deg": mean_rotation(rot["left"], m_det),
            "mean_rotation_right_deg": mean_rotation(rot["right"], m_det),
        }
        if self.checks["simulator"]:
            s_pass, s_det = self._stacked("simulator", "pass"), self._stacked("simulator", "determinate")
            counterfactual |= {
                "determinate": int(s_pass[:, cf_step].sum()),
                "passed": int((m_pass & s_pass)[:, cf_step].sum()),
                "pass_rate_by_horizon": rate(m_pass, s_pass).tolist(),
                "simulator": {
                    "pass_rate": float(rate(s_pass, s_det)[cf_step]),
                    "pass_rate_by_horizon": rate(s_pass, s_det).tolist(),
                    "road_visible": int(s_det[:, cf_step].sum()),
                    "mean_rotation_left_deg": mean_rotation(self._stacked("simulator", "rotation_left_deg"), s_det),
                    "mean_rotation_right_deg": mean_rotation(self._stacked("simulator", "rotation_right_deg"), s_det),
                },
                "agreement_with_simulator": float((m_pass == s_pass)[s_det[:, cf_step], cf_step].double().mean()),
                "branch_psnr": {
                    name: {p: (self.branch_psnr[f"{name}/{p}"] / max(self.branch_count, 1)).tolist()
                           for p in ("model", "straight_prediction")}
                    for name in BRANCHES},
            }
            headline = counterfactual["pass_rate_by_horizon"][cf_step]
        else:
            counterfactual |= {"determinate": int(m_det[:, cf_step].sum()), "passed": int(m_pass[:, cf_step].sum()),
                               "pass_rate_by_horizon": counterfactual["model_pass_rate_where_road_visible_by_horizon"]}
            headline = counterfactual["model_pass_rate_where_road_visible"]
        return {
            "horizons_s": horizon_seconds(c),
            "psnr": {m: (v / n).tolist() for m, v in self.sums["psnr"].items()},
            "ssim": {m: (v / n).tolist() for m, v in self.sums["ssim"].items()},
            "counterfactual_pass_rate": headline if counterfactual["determinate"] else math.nan,
            "counterfactual": counterfactual,
            "num_windows": n, "num_episodes": num_episodes,
        }


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


def save_counterfactual_strip(samples: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
                              path: str | Path) -> Path:
    """PNG: per sample two rows, the simulator's and the model's frames COUNTERFACTUAL_STEP ahead
    for each branch (straight, left, right), after the last context frame."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2 * len(samples), 1 + len(BRANCHES), figsize=(1.5 * (1 + len(BRANCHES)),
                             1.55 * 2 * len(samples)), squeeze=False)
    for s, (last, sim, model) in enumerate(samples):
        for r, (label, frames) in enumerate((("simulator", sim), ("model", model))):
            row = axes[2 * s + r]
            for ax in row:
                ax.axis("off")
            if r == 0:
                row[0].imshow(last.permute(1, 2, 0).clamp(0, 1).numpy())
                row[0].set_title("last context", fontsize=7)
            for b, name in enumerate(BRANCHES):
                row[1 + b].imshow(frames[b].permute(1, 2, 0).clamp(0, 1).numpy())
                row[1 + b].set_title(f"{label}: {name}", fontsize=7)
    fig.tight_layout(pad=0.2)
    path = Path(path)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
