"""The world model: encoder, action-conditioned ego-motion dynamics, decoder.

Frames are encoded into a spatial latent map (the scene in the car's frame).
The dynamics carry an explicit State (Dreamer-style): that map plus a GRU
vector (the car's motion state). Each step, the GRU reads a summary of the map
and the applied command, and a head turns it into the ground-plane motion of
this step (yaw, forward/lateral shift); the map is warped by that motion and a
small conv net fills in what the warp revealed and whatever else changed. The
camera looks down on the road and turns with the car, so the scene moves
rigidly with the car: the warp gives that structure to the model, which is what
keeps 0.5 s predictions sharp and makes steering visibly rotate them.

Frames are decoded two ways: from the latent map alone (`decode_latent`, which
keeps the latent a full description of the scene: the policy's input), and,
for predictions, composited per pixel from the last observed frame warped by
the accumulated motion, that frame unwarped (the car and the HUD do not move),
and the latent decoding (new road entering the view).

Deterministic rather than stochastic (RSSM): the node shows one prediction per
frame and the policy reads one feature vector; MSE training predicts the
conditional mean, which is what PSNR scores.

Conventions: frames (B, T, 3, H, W), uint8 0..255 or float 0..1; actions
(B, T, 2) raw [steering_angle rad (+ = left), speed m/s]. As in Dreamer,
actions[:, t] is the command that moved the car from frame t-1 to frame t.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F


CHANGED_PIXEL = 0.01
"""Mean absolute change (0..1) above which a pixel counts as moving for the ego-motion loss."""


@dataclass
class WorldModelConfig:
    image_size: int = 96
    """Square camera frames, pixels; the encoder downsamples by 2**len(enc_channels)."""
    enc_channels: tuple[int, ...] = (16, 32, 64)
    """Encoder conv widths, each a stride-2 4x4 conv (96 -> 48 -> 24 -> 12)."""
    dec_channels: tuple[int, ...] = (64, 32, 16)
    """Decoder widths, the first at latent resolution, then one 2x transposed conv each."""
    latent_channels: int = 32
    """Channels of the spatial latent map (latent_channels x 12 x 12 at 96 px)."""
    embed_dim: int = 128
    """Size of the linear summary of the latent map that the GRU (and the policy) read."""
    hidden: int = 128
    """GRU state size: the car's motion state."""
    refine_channels: int = 48
    """Width of the conv net that updates the warped latent map each step."""
    action_dim: int = 2
    """[steering_angle rad, speed m/s]."""
    action_embed: int = 32
    """Width of the action embedding fed to the GRU at every step."""
    model_dt: float = 0.1
    """Seconds per model step (every 5th frame of a 50 Hz camera)."""
    context_steps: int = 3
    """Frames observed before predicting (0.3 s at model_dt 0.1)."""
    horizon_steps: int = 5
    """Frames predicted open-loop; horizon_steps * model_dt >= 0.5 s."""
    steering_scale: float = 0.4
    """Steering normalisation, rad (the front-wheel limit): full lock -> +-1."""
    speed_scale: float = 100.0
    """Speed normalisation, m/s (CarRacing tops out at 100)."""
    ground_aspect: float = 0.8
    """Ground height/width ratio seen in one frame (CarRacing squashes its 1000x800 render into
    96x96: 0.8): a fixed property of the camera, like a calibration. Makes the warp's rotations
    rigid on the ground."""
    view_width_m: float = 61.7
    """Ground width one frame shows, m (CarRacing renders 1000 px at ZOOM 2.7 * SCALE 6 px/m):
    with model_dt and wheelbase_m it sets the kinematic motion prior's initial gains."""
    wheelbase_m: float = 3.24
    """Axle to axle, m (CarRacing's car)."""
    lateral_grip: float = 140.0
    """Lateral acceleration the tyres hold, m/s^2: caps the prior's yaw rate at grip / speed
    (at 88 m/s, full lock turns the car by ~9 degrees in 0.1 s, not the kinematic ~35)."""
    pivot_y: float = 0.5
    """Where the car sits in normalised image coordinates (y down, -1 top, +1 bottom):
    the point the predicted ground motion rotates about (only its parametrisation)."""
    pixel_warp: bool = True
    """Composite predictions from the warped last frame (sharp) with the latent decoding;
    False decodes predictions from the latent alone."""

    def __post_init__(self) -> None:
        self.enc_channels = tuple(self.enc_channels)
        self.dec_channels = tuple(self.dec_channels)
        if self.image_size % (2 ** len(self.enc_channels)):
            raise ValueError(f"image_size {self.image_size} not divisible by 2**{len(self.enc_channels)}")
        if len(self.dec_channels) != len(self.enc_channels):
            raise ValueError("enc_channels and dec_channels must have the same length")

    @property
    def latent_size(self) -> int:
        """Side of the latent map, cells."""
        return self.image_size // 2 ** len(self.enc_channels)

    @property
    def policy_feature_dim(self) -> int:
        return self.hidden + self.embed_dim

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "WorldModelConfig":
        return cls(**d)


@dataclass
class State:
    """What the dynamics carry from one step to the next (optionally with a time axis after B)."""

    feat: torch.Tensor
    """(B, latent_channels, S, S) latent map of the scene at this step."""
    h: torch.Tensor
    """(B, hidden) GRU motion state."""
    anchor: torch.Tensor
    """(B, 3, H, W) float: the last observed frame, which predictions warp."""
    motion: torch.Tensor
    """(B, 3, 3) accumulated ground motion from the anchor frame to this step, as the affine
    map from this step's normalised image coordinates to the anchor's."""
    step_motion: torch.Tensor | None = None
    """(B, 3) [yaw, x shift, y shift] of the last step alone, in the warp's ground units
    (None for an observed state)."""


class WorldModel(nn.Module):
    def __init__(self, config: WorldModelConfig) -> None:
        super().__init__()
        self.config = c = config
        s = c.latent_size
        layers, cin = [], 3
        for ch in c.enc_channels:
            layers += [nn.Conv2d(cin, ch, 4, 2, 1), nn.SiLU()]
            cin = ch
        layers.append(nn.Conv2d(cin, c.latent_channels, 1))
        self.encoder = nn.Sequential(*layers)

        d = c.dec_channels
        layers = [nn.Conv2d(c.latent_channels, d[0], 3, 1, 1), nn.SiLU()]
        for cin, cout in zip(d, d[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.SiLU()]
        layers.append(nn.ConvTranspose2d(d[-1], 6, 4, 2, 1))  # rgb + 3 compositing logits
        self.decoder = nn.Sequential(*layers)

        self.summary = nn.Linear(c.latent_channels * s * s, c.embed_dim)
        self.action_mlp = nn.Sequential(nn.Linear(c.action_dim, c.action_embed), nn.SiLU())
        self.gru = nn.GRUCell(c.embed_dim + c.action_embed, c.hidden)
        self.motion_head = nn.Sequential(nn.Linear(c.hidden + c.action_dim, 64), nn.SiLU(), nn.Linear(64, 3))
        nn.init.zeros_(self.motion_head[-1].weight)  # start from "nothing moves"
        nn.init.zeros_(self.motion_head[-1].bias)
        # Ackermann kinematics as a prior the learned head corrects: over one step the car turns
        # by ~ speed * tan(steering) / wheelbase * dt and moves forward by ~ speed * dt, so yaw is
        # bilinear in the command and the forward shift linear in its speed. Two learned gains
        # (image units per normalised command) tie the motion to the actions, where a free head
        # would read it off the context frames and ignore the commands.
        # Initialised from the kinematics, in the warp's ground units (half the view width):
        # yaw per step at full lock and full speed, then forward shift per step at full speed.
        # Both are negative in the warp's convention (it maps new-frame coordinates to where
        # they were in the previous frame): driving forward samples the previous frame higher
        # up, and steering left rotates the sampling clockwise. Measured on recorded frames at
        # ~85 m/s: the best rigid warp of frame k onto k+1 has a forward shift of -0.5 to -0.75
        # and, one step into a full-lock pulse, a yaw of -0.1 rad for left and +0.1 for right.
        # Starting there matters: a photometric loss only has gradients within a pixel or so
        # of the true motion, which at speed is ~17 px per step; started with the wrong signs,
        # training drove the gains towards zero and left the motion to blurry generation.
        # Third: the grip limit's yaw per step at full speed (its sign is the steering's).
        half_width = c.view_width_m / 2
        self.command_motion_gain = nn.Parameter(torch.tensor([
            -c.speed_scale * math.tan(c.steering_scale) / c.wheelbase_m * c.model_dt,
            -c.speed_scale * c.model_dt / half_width,
            c.lateral_grip / c.speed_scale * c.model_dt]))
        # Fixed, not learned: the odometry pins the motion in metres, and a learned aspect let the
        # photometric losses shorten every forward shift on screen instead (it drifted from 0.8
        # to 0.91). A buffer keeps the state-dict key, so older checkpoints, whose learned value
        # it holds, load unchanged.
        self.register_buffer("log_aspect", torch.tensor(math.log(c.ground_aspect)))
        self.h_to_map = nn.Linear(c.hidden, 8)
        r = c.refine_channels
        self.refine = nn.Sequential(
            nn.Conv2d(c.latent_channels + 1 + 2 + 8 + c.action_dim, r, 3, 1, 1), nn.SiLU(),
            nn.Conv2d(r, r, 3, 1, 1), nn.SiLU(),
            nn.Conv2d(r, c.latent_channels, 3, 1, 1))
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, s), torch.linspace(-1, 1, s), indexing="ij")
        self.register_buffer("coords", torch.stack([xs, ys])[None], persistent=False)
        self.register_buffer("action_scale", torch.tensor([c.steering_scale, c.speed_scale]),
                             persistent=False)

    # ---- encoder / decoder ------------------------------------------------------------

    @staticmethod
    def to_float(frames: torch.Tensor) -> torch.Tensor:
        """uint8 0..255 -> float 0..1; float frames pass through."""
        return frames.float() / 255.0 if frames.dtype == torch.uint8 else frames

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) uint8 or float -> (B, T, latent_channels, S, S) latent maps."""
        x = self.to_float(frames)
        b, t = x.shape[:2]
        z = self.encoder(x.flatten(0, 1) - 0.5)
        return z.unflatten(0, (b, t))

    def _decode_raw(self, feat: torch.Tensor) -> torch.Tensor:
        b, t = feat.shape[:2]
        return self.decoder(feat.flatten(0, 1)).unflatten(0, (b, t))

    def decode_latent(self, feat: torch.Tensor) -> torch.Tensor:
        """(B, T, C, S, S) latent maps -> (B, T, 3, H, W) frames in 0..1, from the latent alone."""
        return torch.sigmoid(self._decode_raw(feat)[:, :, :3])

    def decode(self, states: State) -> torch.Tensor:
        """Imagined states (with a time axis) -> predicted frames (B, T, 3, H, W) in 0..1."""
        return self._decode_parts(states)["pred"]

    def _decode_parts(self, states: State) -> dict[str, torch.Tensor]:
        """pred: the composite; gen: the latent-only decoding; warped/valid: the anchor frame
        warped by the accumulated motion and where that warp lands inside the anchor."""
        out = self._decode_raw(states.feat)
        gen = torch.sigmoid(out[:, :, :3])
        if not self.config.pixel_warp:
            return {"pred": gen, "gen": gen}
        b, t = gen.shape[:2]
        anchor = states.anchor[:, None].expand(b, t, *states.anchor.shape[1:]).flatten(0, 1)
        warped, valid = self._warp(anchor, states.motion.flatten(0, 1))
        logits = out[:, :, 3:].flatten(0, 1)
        logits = torch.cat([logits[:, :1] + torch.log(valid.clamp_min(1e-4)), logits[:, 1:]], 1)
        w = torch.softmax(logits, dim=1)
        pred = w[:, :1] * warped + w[:, 1:2] * anchor + w[:, 2:3] * gen.flatten(0, 1)
        return {"pred": pred.unflatten(0, (b, t)), "gen": gen, "warped": warped.unflatten(0, (b, t)),
                "valid": valid.unflatten(0, (b, t))}

    # ---- dynamics -----------------------------------------------------------------------

    def initial_state(self, feat: torch.Tensor, anchor: torch.Tensor) -> State:
        b = feat.shape[0]
        eye = torch.eye(3, device=feat.device, dtype=feat.dtype).expand(b, 3, 3)
        return State(feat, feat.new_zeros(b, self.config.hidden), anchor, eye)

    def _motion_matrix(self, m: torch.Tensor) -> torch.Tensor:
        """(B, 3) [yaw rad, x shift, y shift] -> (B, 3, 3) map from the new step's normalised
        image coordinates to the previous step's: a rotation about the car's position on an
        isotropic ground plane (y scaled by the learned aspect), then a shift."""
        theta, tx, ty = m.unbind(-1)
        r = self.log_aspect.exp()
        py = self.config.pivot_y * r
        cos, sin = torch.cos(theta), torch.sin(theta)
        zero, one = torch.zeros_like(theta), torch.ones_like(theta)
        # Ground coordinates q = (x, y * r): q_prev = R (q_new - p) + p + t, with p = (0, py).
        rows = [torch.stack([cos, -sin, sin * py + tx], -1),
                torch.stack([sin, cos, py - cos * py + ty], -1),
                torch.stack([zero, zero, one], -1)]
        mq = torch.stack(rows, -2)
        unit = torch.ones_like(r)
        s = torch.diag(torch.stack([unit, r, unit])).to(m)
        s_inv = torch.diag(torch.stack([unit, 1 / r, unit])).to(m)
        return s_inv @ mq @ s

    @staticmethod
    def _warp(x: torch.Tensor, matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Resample x (N, C, h, w) at matrix @ (output coords); also the in-bounds weight (N, 1, h, w)."""
        grid = F.affine_grid(matrix[:, :2], list(x.shape), align_corners=False)
        ones = torch.ones_like(x[:, :1])
        out = F.grid_sample(torch.cat([x, ones], 1), grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)
        return out[:, :-1], out[:, -1:]

    def _command_motion(self, a: torch.Tensor) -> torch.Tensor:
        """(B, 2) normalised [steering, speed] -> (B, 3) [yaw, x shift, y shift] kinematic prior."""
        steering, speed = a.unbind(-1)
        kinematic_yaw, forward, grip_yaw = self.command_motion_gain.unbind()
        max_yaw = grip_yaw.abs() / speed.abs().clamp_min(0.05)
        yaw = max_yaw * torch.tanh(kinematic_yaw * steering * speed / max_yaw)
        return torch.stack([yaw, torch.zeros_like(yaw), forward * speed], -1)

    def normalize_actions(self, actions: torch.Tensor) -> torch.Tensor:
        return actions / self.action_scale

    def step(self, state: State, action: torch.Tensor) -> State:
        """One model step under `action` (B, 2) raw: the prior for the next frame."""
        a = self.normalize_actions(action)
        e = self.summary(state.feat.flatten(1))
        h = self.gru(torch.cat([e, self.action_mlp(a)], -1), state.h)
        step_motion = self.motion_head(torch.cat([h, a], -1)) + self._command_motion(a)
        m = self._motion_matrix(step_motion)
        warped, valid = self._warp(state.feat, m)
        b, _, s, _ = warped.shape
        extra = torch.cat([valid, self.coords.expand(b, 2, s, s),
                           self.h_to_map(h)[:, :, None, None].expand(b, 8, s, s),
                           a[:, :, None, None].expand(b, a.shape[1], s, s)], 1)
        feat = warped + self.refine(torch.cat([warped, extra], 1))
        return State(feat, h, state.anchor, state.motion @ m, step_motion)

    def observe(self, context_frames: torch.Tensor, context_actions: torch.Tensor,
                state: State | None = None) -> State:
        """Fold observed frames (B, T, 3, H, W) and the commands that led to them (B, T, 2)
        into the carried state. Pass the previous state to continue a stream frame by frame
        (the node's incremental use); without it the first frame starts a fresh state and
        its action is unused."""
        return self.observe_latents(self.encode(context_frames), self.to_float(context_frames),
                                    context_actions, state)

    def observe_latents(self, z: torch.Tensor, frames: torch.Tensor, actions: torch.Tensor,
                        state: State | None) -> State:
        """`observe` for frames already encoded: latents z (B, T, C, S, S), the frames themselves
        (B, T, 3, H, W) float (the anchor predictions warp; a policy that predicts no frames may pass
        a placeholder), actions (B, T, 2) raw. What a policy calls with its cached latents."""
        for t in range(z.shape[1]):
            if state is None:
                state = self.initial_state(z[:, t], frames[:, t])
                continue
            prior = self.step(state, actions[:, t])
            state = self.initial_state(z[:, t], frames[:, t])
            state.h = prior.h
        return state

    def imagine(self, state: State, future_actions: torch.Tensor) -> State:
        """Roll forward open-loop under future actions (B, H, 2): states with a time axis (B, H, ...)."""
        out = []
        for t in range(future_actions.shape[1]):
            state = self.step(state, future_actions[:, t])
            out.append(state)
        return State(torch.stack([s.feat for s in out], 1), torch.stack([s.h for s in out], 1),
                     state.anchor, torch.stack([s.motion for s in out], 1),
                     torch.stack([s.step_motion for s in out], 1))

    def video_pred(self, context_frames: torch.Tensor, context_actions: torch.Tensor,
                   future_actions: torch.Tensor) -> torch.Tensor:
        """Context (B, K, 3, H, W) + actions (B, K, 2) and future actions (B, H, 2)
        -> predicted frames (B, H, 3, H, W) float in 0..1."""
        return self.decode(self.imagine(self.observe(context_frames, context_actions), future_actions))

    def policy_features(self, state: State) -> torch.Tensor:
        """The fixed-size vector a policy head reads: (B, hidden + embed_dim) =
        [GRU motion state h, linear summary of the latent map]; 256 floats by default.
        Works on observed or imagined states (with a time axis: (B, T, D))."""
        feat = state.feat
        e = self.summary(feat.flatten(-3))
        return torch.cat([state.h, e], -1)

    # ---- training ----------------------------------------------------------------------

    def forward(self, frames: torch.Tensor, actions: torch.Tensor, weights: dict[str, float] | None = None,
                motion: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Training entry point (what DDP wraps): compute_loss."""
        return self.compute_loss(frames, actions, weights, motion)

    def motion_target(self, motion: torch.Tensor) -> torch.Tensor:
        """Measured motion (..., 3) [yaw rad, left m, forward m] (dataset.window_motion) -> the
        warp's [yaw, x shift, y shift] in ground units (half the view width). Both are negated:
        the warp maps new-frame coordinates to where they were, so moving forward samples
        the previous frame higher up and turning left (yaw > 0) rotates the sampling clockwise."""
        half_width = self.config.view_width_m / 2
        yaw, left, forward = motion.unbind(-1)
        return torch.stack([-yaw, -left / half_width, -forward / half_width], -1)

    def compute_loss(self, frames: torch.Tensor, actions: torch.Tensor, weights: dict[str, float] | None = None,
                     motion: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """frames (B, K+H, 3, H, W), actions (B, K+H, 2), measured motion (B, K+H, 3) or None
        -> (loss, metrics).

        loss = prediction MSE of the composited frames, mean over the horizon
             + gen  * MSE of the latent-only decodings of the same predictions
             + rec  * reconstruction MSE of the context frames from their latents
             + warp * L1 between the warped last frame and the truth, over the pixels that
                      changed since the last frame and that the warp finds in it (a photometric
                      ego-motion loss: it teaches the motion head directly, whatever the
                      compositing prefers)
             + lat  * MSE between imagined latent maps and the encoder's, relative to the
                      latents' variance (target detached; keeps imagined features usable
                      where observed ones are expected)
             + motion * smooth L1 between each imagined step's ego-motion and the odometry's
                      (when given): the photometric losses alone let the motion shrink
                      towards a blur wherever it is uncertain.
        """
        w = {"gen": 0.5, "rec": 1.0, "warp": 0.5, "lat": 0.1, "motion": 1.0} | (weights or {})
        k = self.config.context_steps
        x = self.to_float(frames)
        z = self.encode(x)
        state = self.observe_latents(z[:, :k], x[:, :k], actions[:, :k], None)
        imagined = self.imagine(state, actions[:, k:])
        parts = self._decode_parts(imagined)
        pred, gen = parts["pred"], parts["gen"]
        target = x[:, k:]
        pred_mse = ((pred - target) ** 2).mean(dim=(0, 2, 3, 4))  # per horizon step
        gen_mse = F.mse_loss(gen, target)
        rec_mse = F.mse_loss(self.decode_latent(z[:, :k]), x[:, :k])
        zt = z[:, k:].detach()
        lat = F.mse_loss(imagined.feat, zt) / zt.var().clamp_min(1e-4)
        loss = pred_mse.mean() + w["gen"] * gen_mse + w["rec"] * rec_mse + w["lat"] * lat
        metrics = {}
        if "warped" in parts:
            # Only pixels that changed since the anchor frame count: what is fixed to the camera
            # (the car, a HUD) would otherwise pin the motion at zero. Only pixels the warp finds
            # inside the anchor count: driving forward always reveals ground the anchor never
            # saw, and counting the warp's empty (black) fill there penalised every forward
            # shift, pulling the motion towards zero against the odometry. Warping the view out
            # of the frame to escape this loss is barred by the odometry's motion loss.
            anchor = x[:, k - 1:k]
            changed = ((target - anchor).abs().mean(dim=2, keepdim=True) > CHANGED_PIXEL).to(x)
            seen = changed * (parts["valid"] > 0.999).to(x)
            warp_l1 = ((parts["warped"] - target).abs() * seen).sum() / (3 * seen.sum()).clamp_min(1.0)
            loss = loss + w["warp"] * warp_l1
            metrics["warp_l1"] = warp_l1.item()
        if motion is not None and w["motion"] > 0:
            motion_err = F.smooth_l1_loss(imagined.step_motion, self.motion_target(motion[:, k:]), beta=0.05)
            loss = loss + w["motion"] * motion_err
            metrics["motion_err"] = motion_err.item()
        with torch.no_grad():
            psnr_last = -10 * torch.log10(((pred[:, -1] - target[:, -1]) ** 2).mean(dim=(1, 2, 3))
                                          .clamp_min(1e-10)).mean()
        metrics |= {"loss": loss.item(), "pred_mse": pred_mse.mean().item(), "gen_mse": gen_mse.item(),
                    "rec_mse": rec_mse.item(), "lat": lat.item(), "psnr_last": psnr_last.item()}
        return loss, metrics


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB for frames in 0..1, reduced over the last three dims."""
    mse = ((pred.float() - target.float()) ** 2).mean(dim=(-3, -2, -1))
    return -10.0 * torch.log10(mse.clamp_min(1e-10))


def horizon_seconds(config: WorldModelConfig) -> list[float]:
    return [round((i + 1) * config.model_dt, 6) for i in range(config.horizon_steps)]

