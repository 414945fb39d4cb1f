"""Profiles: which nodes run together, read from `config/profiles.yaml`.

Both `ros2 launch photon <profile>.launch.py` and `photon up <profile>` build
their nodes from `load_profile`, so the two cannot drift apart.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

import yaml

from photon_policy.config_files import flatten
from photon_policy.paths import config_dir

PACKAGE = "photon"


class ProfileError(ValueError):
    """An unknown profile or a malformed profile entry; the message names it."""


@dataclass(frozen=True)
class NodeSpec:
    name: str
    executable: str
    parameter_files: tuple[Path, ...]
    use_sim_time: bool
    remappings: tuple[tuple[str, str], ...] = ()
    overrides: dict[str, Any] = field(default_factory=dict)
    optional: bool = False  # runs only when asked for (`photon up --with NAME`, launch arg with_NAME:=true)

    def parameters(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Inline parameters, applied after the parameter files (later wins)."""
        return {"use_sim_time": self.use_sim_time, **self.overrides, **(extra or {})}

    def ros_args(self, extra: dict[str, Any] | None = None) -> list[str]:
        """The `--ros-args` tail that runs this node as the profile says."""
        args = ["--ros-args", "-r", f"__node:={self.name}"]
        for path in self.parameter_files:
            args += ["--params-file", str(path)]
        for key, value in self.parameters(extra).items():
            args += ["-p", f"{key}:={_yaml_scalar(value)}"]
        for src, dst in self.remappings:
            args += ["-r", f"{src}:={dst}"]
        return args

    def launch_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `launch_ros.actions.Node` that run this node as the profile says."""
        return {"package": PACKAGE, "executable": self.executable, "name": self.name,
                "parameters": [*map(str, self.parameter_files), self.parameters()],
                "remappings": list(self.remappings), "output": "screen", "emulate_tty": True}


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    nodes: tuple[NodeSpec, ...]

    def node(self, name: str) -> NodeSpec:
        for spec in self.nodes:
            if spec.name == name:
                return spec
        raise ProfileError(f"profile '{self.name}' has no node '{name}'")

    def selected(self, with_nodes: Iterable[str] = ()) -> tuple[NodeSpec, ...]:
        """The nodes to run: every required one, and the optional ones named in `with_nodes`."""
        wanted = set(with_nodes)
        optional = {spec.name for spec in self.nodes if spec.optional}
        unknown = wanted - optional
        if unknown:
            raise ProfileError(f"profile '{self.name}' has no optional node(s) {', '.join(sorted(unknown))}"
                               f" (optional: {', '.join(sorted(optional)) or 'none'})")
        return tuple(spec for spec in self.nodes if not spec.optional or spec.name in wanted)


def _yaml_scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=float("inf")).strip()  # one line: an argv word
    return text.removesuffix("\n...").strip()


def profiles_file(directory: Path | None = None) -> Path:
    return (directory or config_dir()) / "profiles.yaml"


def profile_names(directory: Path | None = None) -> list[str]:
    return list(_read(profiles_file(directory)))


def _read(path: Path) -> dict[str, Any]:
    with path.open() as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: expected a mapping of profile names")
    return data


def load_profile(name: str, directory: Path | None = None) -> Profile:
    directory = directory or config_dir()
    path = profiles_file(directory)
    data = _read(path)
    if name not in data:
        raise ProfileError(f"unknown profile '{name}'; known profiles: {', '.join(data)}")
    entry = data[name]
    nodes = []
    for raw in entry.get("nodes", []):
        try:
            files = tuple(directory / f for f in raw.get("parameters", []))
            nodes.append(NodeSpec(
                name=raw["name"],
                executable=raw["executable"],
                parameter_files=files,
                use_sim_time=bool(raw.get("use_sim_time", False)),
                remappings=tuple((str(k), str(v)) for k, v in (raw.get("remappings") or {}).items()),
                overrides=dict(raw.get("overrides") or {}),
                optional=bool(raw.get("optional", False)),
            ))
        except KeyError as exc:
            raise ProfileError(f"profile '{name}' in {path}: node entry lacks {exc}") from exc
    if not nodes:
        raise ProfileError(f"profile '{name}' in {path} has no nodes")
    return Profile(name=name, description=str(entry.get("description", "")), nodes=tuple(nodes))


def executable_target(executable: str) -> str:
    """`module:function` of a node executable, from this package's console_scripts."""
    for ep in metadata.entry_points(group="console_scripts"):
        if ep.name == executable and ep.dist is not None and ep.dist.name == PACKAGE:
            return ep.value
    raise ProfileError(
        f"executable '{executable}' is not installed by package '{PACKAGE}' "
        "(not built yet, or the install is stale: run `make setup`)")


def declared_parameters(executable: str) -> set[str] | None:
    """Names of every parameter a node executable declares (its module's PARAMETERS: config
    dataclasses and prefixes), plus use_sim_time; None if the module does not list them."""
    import dataclasses
    import importlib

    module = importlib.import_module(executable_target(executable).partition(":")[0])
    listed = getattr(module, "PARAMETERS", None)
    if listed is None:
        return None
    return {"use_sim_time", *(prefix + f.name for cls, prefix in listed for f in dataclasses.fields(cls) if f.init)}


def file_parameters(path: Path, node: str) -> dict[str, Any]:
    """The parameters a --params-file sets for `node` by name. The `/**` wildcard section is left
    out: it is meant for every node (config/vehicle.yaml), and each takes only what it declares."""
    data = yaml.safe_load(path.read_text()) or {}
    out: dict[str, Any] = {}
    for key in (node, f"/{node}"):
        out.update(flatten((data.get(key) or {}).get("ros__parameters") or {}))
    return out


def check_parameters(spec: NodeSpec, extra: dict[str, Any] | None = None) -> None:
    """ProfileError naming any parameter the node does not declare (a typo would be silently ignored
    by ROS), from its parameter files, the profile's overrides or `extra` (--set)."""
    for path in spec.parameter_files:
        if not path.is_file():
            raise ProfileError(f"node '{spec.name}': missing parameter file {path}")
    known = declared_parameters(spec.executable)
    if known is None:
        return
    given = {name: "profile" for name in spec.overrides}
    for path in spec.parameter_files:
        given.update({name: path.name for name in file_parameters(path, spec.name)})
    given.update({name: "--set" for name in (extra or {})})
    unknown = sorted(name for name in given if name not in known)
    if unknown:
        raise ProfileError(f"node '{spec.name}' ({spec.executable}) has no parameter "
                           + ", ".join(f"'{n}' (from {given[n]})" for n in unknown)
                           + f"; its parameters are: {', '.join(sorted(known))}")


def node_command(spec: NodeSpec, extra: dict[str, Any] | None = None) -> list[str]:
    """argv that runs one node of a profile with this Python, no `ros2 run` needed; ProfileError for a
    missing parameter file or a parameter the node does not have."""
    module, _, func = executable_target(spec.executable).partition(":")
    check_parameters(spec, extra)
    bootstrap = f"import sys, {module} as m; sys.exit(m.{func}())"
    return [sys.executable, "-c", bootstrap, *spec.ros_args(extra)]


def parse_overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    """`node.param=value` (value in YAML syntax) -> {node: {param: value}}."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        node, dot, param = key.partition(".")
        if not sep or not dot or not node or not param:
            raise ValueError(f"--set '{item}': expected node.param=value")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:  # e.g. `policy.mode=[`: a user's typo, not a traceback
            raise ValueError(f"--set '{item}': the value is not YAML ({str(exc).splitlines()[0]})") from None
        out.setdefault(node, {})[param] = value
    return out
