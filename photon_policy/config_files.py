"""Read a node's config dataclass from its ROS parameter YAML, without ROS.

The raw (in-process) loops, benchmarks and training read the same files the
nodes are launched with, so both sides run with the same numbers.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, TypeVar

import yaml

ConfigT = TypeVar("ConfigT")


def describe(default: Any, description: str, **kwargs: Any) -> Any:
    """A dataclass field whose description becomes the ROS parameter's description
    (photon_policy.ros.node_runtime.declare_config); usable in ROS-free cores."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default),
                                 metadata={"description": description}, **kwargs)
    return dataclasses.field(default=default, metadata={"description": description}, **kwargs)


def require_positive(config: Any, *names: str) -> None:
    """ValueError naming the first field that is not a finite number > 0 (an infinite limit is no limit)."""
    for name in names:
        if not 0.0 < getattr(config, name) < math.inf:
            raise ValueError(f"{name}={getattr(config, name)} must be finite and > 0")


def require_non_negative(config: Any, *names: str) -> None:
    """ValueError naming the first field that is not a finite number >= 0."""
    for name in names:
        if not 0.0 <= getattr(config, name) < math.inf:
            raise ValueError(f"{name}={getattr(config, name)} must be finite and >= 0")


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested parameter YAML -> {"a.b": value}: ROS 2's names for nested parameters."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def node_parameters(path: Path, node: str) -> dict[str, Any]:
    """`ros__parameters` of `node` in a parameter file, nested keys joined with '.'."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    if node not in data:
        raise KeyError(f"{path} has no parameters for node '{node}' (has: {', '.join(data)})")
    return flatten(data[node].get("ros__parameters", {}))


def config_from_file(config_cls: type[ConfigT], path: Path, node: str, prefix: str = "") -> ConfigT:
    """The dataclass built from the file's values for its fields; unlisted fields keep defaults."""
    params = node_parameters(path, node)
    names = {f.name for f in dataclasses.fields(config_cls)}
    values = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix) and k[len(prefix):] in names}
    return config_cls(**values)
