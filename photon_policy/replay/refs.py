"""The reference file of a suite (test/replay/refs/SUITE.json): the outputs of every node as the
replay recorded them, and what they were made with: the content hash of each node's checkpoint
(photon_policy.learning.checkpoint), the bag's hash, the nodes' parameters. A reference made with
another checkpoint or bag is refused, naming both hashes: re-pin it with --update-refs."""
from __future__ import annotations

import datetime
import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photon_policy.paths import REPO_ROOT, shipped_model
from photon_policy.profiles import load_profile, file_parameters
from photon_policy.replay.suites import ReplayNode, Suite

FORMAT = "photon-replay-reference"
VERSION = 1
CHECKPOINTS = {"policy": "policy.pt", "world_model": "world_model.pt"}
"""Nodes that load a checkpoint, and the one shipped in models/ that an empty `checkpoint` means."""


class ReferenceError(RuntimeError):
    """A reference that cannot be used for this replay (missing, malformed, other checkpoint or bag)."""


def ref_path(refs_dir: Path, suite: str) -> Path:
    return Path(refs_dir) / "refs" / f"{suite}.json"


def node_parameters(node: ReplayNode) -> dict[str, Any]:
    """The parameters the node runs with: its profile's files and overrides, then the suite's."""
    spec = load_profile(node.profile).node(node.name)
    params: dict[str, Any] = {}
    for path in spec.parameter_files:
        params.update(file_parameters(path, spec.name))
    return {**params, **spec.overrides, **node.parameters}


def checkpoint_path(node: ReplayNode) -> Path | None:
    if node.name not in CHECKPOINTS:
        return None
    given = node_parameters(node).get("checkpoint") or ""
    return Path(given) if given else shipped_model(CHECKPOINTS[node.name], node.name.replace("_", " "))


def load_node_checkpoint(node: ReplayNode) -> dict | None:
    """The node's checkpoint dict, verified by its own loader (CheckpointError naming the problem)."""
    path = checkpoint_path(node)
    if path is None:
        return None
    if node.name == "policy":
        from photon_policy.policy.checkpoint import load_policy_checkpoint
        return load_policy_checkpoint(path)
    from world_model_node.checkpoint import load_checkpoint
    return load_checkpoint(path)


def bag_sha256(bag: Path) -> str:
    """Hash of the bag's storage files (names and bytes, in name order)."""
    h = hashlib.sha256()
    for path in sorted(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@dataclass
class Reference:
    suite: str
    bag_sha256: str
    checkpoints: dict[str, str]                 # node -> checkpoint content hash
    parameters: dict[str, dict[str, Any]]       # node -> parameters it ran with
    outputs: dict[str, dict[str, Any]]          # node -> topic -> {"type", "messages"}
    made: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "suite": self.suite, "made": self.made,
                "bag_sha256": self.bag_sha256, "checkpoints": self.checkpoints, "parameters": self.parameters,
                "outputs": self.outputs}


def made_now() -> dict[str, str]:
    try:
        commit = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "commit": commit or "unknown"}


def write_reference(path: Path, ref: Reference) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # One message per line: a re-pin's git diff shows which messages changed.
    lines = json.dumps(ref.to_json(), indent=1, sort_keys=True, allow_nan=True)
    path.write_text(lines + "\n")


def read_reference(path: Path) -> Reference:
    if not path.is_file():
        raise ReferenceError(f"{path}: no reference; make one with `photon replay-test --update-refs`")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ReferenceError(f"{path}: not a readable reference ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ReferenceError(f"{path}: not a replay reference (no '{FORMAT}' format tag)")
    if data.get("version") != VERSION:
        raise ReferenceError(f"{path}: reference version {data.get('version')!r}, this code reads {VERSION}")
    try:
        return Reference(data["suite"], data["bag_sha256"], data["checkpoints"], data["parameters"],
                         data["outputs"], data["made"])
    except KeyError as exc:
        raise ReferenceError(f"{path}: malformed reference: {exc} missing") from exc


def check_reference(path: Path, ref: Reference, suite: Suite, bag_hash: str, checkpoints: dict[str, str]) -> None:
    """ReferenceError unless the reference was made from this bag with these checkpoints (both hashes)."""
    if ref.bag_sha256 != bag_hash:
        raise ReferenceError(f"{path}: made from another bag: reference bag sha256 {ref.bag_sha256}, "
                             f"{suite.bag} has {bag_hash}; re-pin with --update-refs if the bag changed on purpose")
    for node in suite.nodes:
        if node.name not in ref.outputs:
            raise ReferenceError(f"{path}: holds no outputs of node '{node.name}'; re-pin with --update-refs")
        want, have = ref.checkpoints.get(node.name), checkpoints.get(node.name)
        if want != have:
            raise ReferenceError(f"{path}: made with another {node.name} checkpoint: reference content hash "
                                 f"{want}, this run's checkpoint {checkpoint_path(node)} has {have}; "
                                 "re-pin with --update-refs after an intended change")
