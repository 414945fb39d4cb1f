"""Replay suites (test/replay/suites.yaml): a bag, what it feeds, and the nodes it is fed to. ROS-free."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from photon_policy.paths import REPO_ROOT

DEFAULT_REFS = REPO_ROOT / "test" / "replay"
NODES = ("policy", "world_model", "shadow")
ANSWER_RULES = ("every_frame", "world_model")


class SuiteError(ValueError):
    """A malformed suites.yaml entry; the message names it."""


@dataclass(frozen=True)
class ReplayNode:
    name: str
    profile: str
    answer: tuple[str, ...]
    answers: str
    budget_ms: float
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def fed_topic(self) -> str | None:
        """`fed:/topic`: the node answers each message fed on this topic (else None)."""
        return self.answers.removeprefix("fed:") if self.answers.startswith("fed:") else None


@dataclass(frozen=True)
class Suite:
    name: str
    bag: Path
    frames: str
    feed: dict[str, str]
    nodes: tuple[ReplayNode, ...]

    def selected(self, names: set[str]) -> "Suite":
        return Suite(self.name, self.bag, self.frames, self.feed, tuple(n for n in self.nodes if n.name in names))


def load_suites(refs_dir: Path) -> list[Suite]:
    path = Path(refs_dir) / "suites.yaml"
    if not path.is_file():
        raise SuiteError(f"{path}: no suites file (see docs/REPLAY_REGRESSION.md)")
    data = yaml.safe_load(path.read_text()) or {}
    suites = []
    for name, entry in data.items():
        try:
            nodes = tuple(_node(node_name, raw) for node_name, raw in entry["nodes"].items())
            suites.append(Suite(name, path.parent / entry["bag"], entry["frames"], dict(entry.get("feed") or {}),
                                nodes))
        except (KeyError, TypeError, AttributeError) as exc:
            raise SuiteError(f"{path}: suite '{name}' is malformed ({type(exc).__name__}: {exc})") from exc
    return suites


def _node(name: str, raw: dict[str, Any]) -> ReplayNode:
    if name not in NODES:
        raise SuiteError(f"unknown node '{name}' (replayable: {', '.join(NODES)})")
    node = ReplayNode(name, raw["profile"], tuple(raw["answer"]), raw["answers"], float(raw["budget_ms"]),
                      dict(raw.get("parameters") or {}))
    if node.answers not in ANSWER_RULES and node.fed_topic is None:
        raise SuiteError(f"node '{name}': answers '{node.answers}' is not one of {ANSWER_RULES} or fed:TOPIC")
    return node


def prediction_frames(stamps_s: list[float], model_dt: float, context_steps: int, rate_hz: float) -> set[int]:
    """Indices of the frames on which world_model_node publishes a prediction, for a gap-free stream:
    a frame is folded into its state when a model step (0.9 model_dt) has passed since the last one
    (StreamingPredictor.push), it predicts once `context_steps` are folded, at most rate_hz times per
    second of stamps (0: every frame; WorldModelNode._prediction_due)."""
    out: set[int] = set()
    last_step = last_prediction = None
    steps = 0
    for i, t in enumerate(stamps_s):
        if last_step is None or t - last_step >= 0.9 * model_dt:
            last_step, steps = t, steps + 1
        if steps >= context_steps and (rate_hz == 0.0 or last_prediction is None
                                       or t - last_prediction >= 0.999 / rate_hz):
            out.add(i)
            last_prediction = t
    return out
