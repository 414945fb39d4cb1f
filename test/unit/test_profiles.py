"""One source of truth for composition: launch files and `photon up` both come from profiles.yaml."""
import ast
import dataclasses
import importlib.util
from pathlib import Path

import pytest
import yaml

from photon_policy.cli import main as photon_main
from photon_policy.profiles import ProfileError, load_profile, node_command, profile_names
from photon_policy.paths import REPO_ROOT

LAUNCH_DIR = REPO_ROOT / "launch"


def _launch_profile_name(path: Path) -> str:
    """The profile a launch file builds, read from its source: it must only delegate."""
    tree = ast.parse(path.read_text())
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert [f.name for f in funcs] == ["generate_launch_description"], f"{path.name} defines its own logic"
    body = funcs[0].body
    assert len(body) == 1 and isinstance(body[0], ast.Return), f"{path.name} must only return the profile"
    call = body[0].value
    assert isinstance(call, ast.Call) and call.func.id == "generate_profile_launch_description"
    return call.args[0].value


def test_every_profile_has_a_launch_file_and_back():
    launched = {_launch_profile_name(p): p.name for p in LAUNCH_DIR.glob("*.launch.py")}
    assert set(launched) == set(profile_names())
    for profile, filename in launched.items():
        assert filename == profile.replace("-", "_") + ".launch.py"


def test_sim_profile_matches_the_design():
    profile = load_profile("sim")
    sim, expert = profile.node("simulator"), profile.node("expert")
    assert sim.executable == "simulator_node" and not sim.use_sim_time
    assert dict(sim.remappings) == {"drive": "/teleop"}
    assert expert.use_sim_time
    for spec in profile.nodes:
        assert all(f.is_file() for f in spec.parameter_files)


@pytest.mark.parametrize("name", ["sim", "sim-policy", "sim-shadow", "sim-dagger"])
def test_launch_and_up_run_the_same_nodes(name):
    """`ros2 launch` kwargs and `photon up` argv carry the same files, parameters and remappings."""
    for spec in load_profile(name).nodes:
        kwargs = spec.launch_kwargs()
        args = spec.ros_args()
        files = [args[i + 1] for i, a in enumerate(args) if a == "--params-file"]
        inline = dict(args[i + 1].split(":=", 1) for i, a in enumerate(args) if a == "-p")
        remaps = [tuple(args[i + 1].split(":=", 1)) for i, a in enumerate(args) if a == "-r"]
        assert kwargs["name"] == spec.name and ("__node", spec.name) in remaps
        assert kwargs["parameters"][:-1] == files
        assert {k: yaml.safe_load(v) for k, v in inline.items()} == kwargs["parameters"][-1]
        assert [r for r in remaps if r[0] != "__node"] == kwargs["remappings"]


@pytest.mark.skipif(importlib.util.find_spec("launch_ros") is None, reason="launch_ros not installed here")
def test_launch_description_builds():  # runs on machines with a system ROS 2
    from photon_policy.launch_profiles import generate_profile_launch_description
    description = generate_profile_launch_description("sim")
    assert len(description.entities) == len(load_profile("sim").nodes)


def test_node_yaml_files_are_keyed_by_the_profile_node_name():
    for name in profile_names():
        for spec in load_profile(name).nodes:
            for path in spec.parameter_files:
                if path.is_file():
                    assert list(yaml.safe_load(path.read_text())) == [spec.name], path


def test_unknown_profile_names_itself(capsys):
    with pytest.raises(ProfileError, match="unknown profile 'warp'.*sim"):
        load_profile("warp")
    assert photon_main(["up", "warp"]) == 2
    assert "unknown profile 'warp'" in capsys.readouterr().err


def test_dry_run_prints_runnable_commands(capsys):
    assert photon_main(["up", "sim", "--dry-run", "--set", "simulator.mode=lockstep"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "mode:=lockstep" in lines[0] and "drive:=/teleop" in lines[0]


def test_profile_node_not_yet_installed_is_named():
    spec = dataclasses.replace(load_profile("sim-policy").node("policy"), executable="no_such_node")
    with pytest.raises(ProfileError, match="no_such_node"):
        node_command(spec)


def test_policy_profiles_wire_the_policy_as_designed():
    """sim-policy and sim-dagger: the policy drives on /drive (the simulator's input, not remapped);
    sim-shadow: the expert drives, the policy runs in shadow mode reading what was applied."""
    for name in ("sim-policy", "sim-dagger"):
        profile = load_profile(name)
        assert profile.node("policy").overrides == {"mode": "autonomous"}
        assert "drive" not in dict(profile.node("simulator").remappings)
    assert "expert" in {n.name for n in load_profile("sim-dagger").nodes}
    shadow = load_profile("sim-shadow")
    assert shadow.node("policy").overrides == {"mode": "shadow"}
    assert dict(shadow.node("policy").remappings) == {"applied_drive": "/teleop"}
    assert dict(shadow.node("simulator").remappings) == {"drive": "/teleop"}


def test_bad_set_syntax_is_reported(capsys):
    assert photon_main(["up", "sim", "--dry-run", "--set", "modelockstep"]) == 2
    assert "node.param=value" in capsys.readouterr().err
