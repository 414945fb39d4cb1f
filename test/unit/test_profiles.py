"""One source of truth for composition: launch files and `photon up` both come from profiles.yaml."""
import ast
import dataclasses
import importlib.util
from pathlib import Path

import pytest
import yaml

from photon_policy.cli import main as photon_main
from photon_policy.profiles import ProfileError, executable_target, load_profile, node_command, profile_names
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


@pytest.mark.parametrize("name", ["sim", "sim-policy", "sim-shadow", "sim-dagger", "car", "car-shadow", "car-record",
                                  "webcam"])
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
    car = load_profile("car")  # an optional node adds its with_<name> argument
    assert len(generate_profile_launch_description("car").entities) == len(car.nodes) + sum(
        n.optional for n in car.nodes)


SHARED = {"vehicle.yaml": ["/**"], "joy_teleop.yaml": ["joy", "joy_teleop"]}
"""Parameter files read by more than one node: vehicle.yaml by every node (`/**`), joy_teleop.yaml
by the joystick and the teleop (one file per concern, as F1TENTH's)."""


def test_node_yaml_files_are_keyed_by_the_profile_node_name():
    for name in profile_names():
        for spec in load_profile(name).nodes:
            for path in spec.parameter_files:
                if path.is_file():
                    keys = list(yaml.safe_load(path.read_text()))
                    if path.name in SHARED:
                        assert keys == SHARED[path.name] and (spec.name in keys or keys == ["/**"]), path
                    else:
                        assert keys == [spec.name], path


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


def test_car_profiles_follow_the_f1tenth_wiring():
    """Autonomy on /drive and the joystick on /teleop meet in the mux, which alone feeds ackermann_cmd;
    shadow and webcam policies never publish /drive; the limits come from vehicle.yaml, last."""
    car = load_profile("car")
    assert [n.name for n in car.selected()] == ["camera", "joy", "joy_teleop", "ackermann_mux", "policy"]
    assert {n.name for n in car.nodes if n.optional} == {"world_model", "recorder"}
    assert car.node("policy").overrides == {"mode": "autonomous"}
    for name in ("car", "car-shadow", "car-record"):
        nodes = {n.executable: n for n in load_profile(name).nodes}
        assert {"camera_node", "joy_node", "teleop_node", "mux_node"} <= set(nodes)
        for executable in ("teleop_node", "mux_node", "camera_node"):
            assert nodes[executable].parameter_files[-1].name == "vehicle.yaml"
    mux = yaml.safe_load((REPO_ROOT / "config/mux.yaml").read_text())["ackermann_mux"]["ros__parameters"]
    assert {k: (v["topic"], v["priority"], v["timeout"]) for k, v in mux["topics"].items()} == {
        "navigation": ("/drive", 10, 0.2), "joystick": ("/teleop", 100, 0.2)}
    shadow = load_profile("car-shadow")
    assert shadow.node("policy").overrides == {"mode": "shadow"}
    assert shadow.node("shadow").executable == "shadow_node"
    assert [p.name for p in shadow.node("shadow").parameter_files] == ["shadow.yaml"]
    webcam = load_profile("webcam")
    assert {n.executable for n in webcam.nodes} == {"camera_node", "world_model_node", "policy_node"}
    assert webcam.node("policy").overrides == {"mode": "shadow", "export": "onnx"}  # 2 cores: docs/CAR.md
    assert webcam.node("world_model").overrides == {"threads": 1}
    assert "recorder_node" in {n.executable for n in load_profile("car-record").nodes}


def test_car_dry_run_and_optional_nodes(capsys):
    assert photon_main(["up", "car", "--dry-run", "--set", "camera.video_device=/tmp/clip.mp4"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5
    assert "video_device:=/tmp/clip.mp4" in lines[0] and "mux.yaml" in lines[3] and "mode:=autonomous" in lines[4]
    assert photon_main(["up", "car", "--dry-run", "--with", "world_model,recorder"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 7 and "drive:=/ackermann_cmd" in lines[5] and "recorder_node" in lines[6]
    assert photon_main(["up", "car", "--dry-run", "--with", "shadow"]) == 2
    assert "no optional node(s) shadow" in capsys.readouterr().err
    # vehicle.yaml's `/**` names (wheelbase, camera_mount.*) are no error for nodes that do not
    # declare them; a node's own misspelt parameter is.
    assert photon_main(["up", "car", "--dry-run", "--set", "camera.framerat=30"]) == 2
    assert "'framerat'" in capsys.readouterr().err


def _installed(executable: str) -> bool:
    try:
        executable_target(executable)
        return True
    except ProfileError:
        return False


@pytest.mark.skipif(not _installed("shadow_node") or not (REPO_ROOT / "config/shadow.yaml").is_file(),
                    reason="the shadow node (shadow_node, config/shadow.yaml) is not in this checkout yet")
def test_car_shadow_dry_run(capsys):
    assert photon_main(["up", "car-shadow", "--dry-run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6 and "shadow.yaml" in lines[5]
