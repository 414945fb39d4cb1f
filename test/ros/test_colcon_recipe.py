"""The robot recipe of docs/CAR.md, run as written: upstream colcon (colcon-common-extensions
from PyPI, in a scratch virtual environment) builds the interface packages in msgs/ as well
as `photon`, with this checkout's ROS 2 wheels as the underlay; the installed nodes then run
and their topics flow. Slow (a CMake build); skipped when colcon cannot be installed."""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from ackermann_msgs.msg import AckermannDriveStamped

from photon_policy.launcher import start_node
from photon_policy.paths import REPO_ROOT

pytestmark = pytest.mark.slow


def recipe() -> list[str]:
    """The colcon line that follows the `colcon-recipe` marker in docs/CAR.md."""
    text = (REPO_ROOT / "docs/CAR.md").read_text()
    match = re.search(r"<!-- colcon-recipe:.*?-->\s*```\s*\n(colcon build[^\n]*)\n```", text, re.S)
    assert match, "docs/CAR.md lost its colcon recipe block"
    return shlex.split(match.group(1))


@pytest.fixture(scope="module")
def colcon_env(tmp_path_factory):
    """A scratch venv that sees the ROS 2 wheels of this interpreter's environment (the underlay)
    and has colcon from PyPI."""
    root = tmp_path_factory.mktemp("colcon")
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=True)
    site = Path(sysconfig.get_paths()["purelib"])
    scratch_site = next((env_dir / "lib").glob("python3*/site-packages"))
    # The underlay's site-packages with its .pth hooks (ros_wheels_bootstrapper sets the library
    # path), but not the editable install of this checkout, whose import hook would win over the
    # workspace's install (a robot's underlay has no photon).
    (scratch_site / "photon_underlay.py").write_text(
        "import os, site, sys\n"
        f"UNDERLAY = {str(site)!r}\n"
        "sys.path.append(UNDERLAY)\n"
        "for name in sorted(os.listdir(UNDERLAY)):\n"
        "    if name.endswith('.pth') and not name.startswith('__editable__'):\n"
        "        site.addpackage(UNDERLAY, name, set())\n")
    (scratch_site / "photon_underlay.pth").write_text("import photon_underlay\n")
    pip = subprocess.run([str(env_dir / "bin/python"), "-m", "pip", "install", "-q", "colcon-common-extensions"],
                         capture_output=True, text=True, timeout=600)
    if pip.returncode != 0:
        pytest.skip(f"colcon-common-extensions could not be installed: {pip.stderr[-500:]}")
    underlay = str(Path(sys.prefix))
    env = {**os.environ, "PATH": f"{env_dir / 'bin'}:{os.environ['PATH']}",
           "AMENT_PREFIX_PATH": underlay, "CMAKE_PREFIX_PATH": underlay}
    return root, env


def test_documented_colcon_recipe_builds_msgs_and_photon_and_the_nodes_run(colcon_env, probe, tmp_path):
    root, env = colcon_env
    ws = root / "ws"
    src = ws / "src" / "photon"
    src.mkdir(parents=True)
    # The checkout as git sees it (tracked and new files), as a clone would have it.
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO_ROOT,
                           capture_output=True, check=True).stdout
    subprocess.run(["tar", "-cf", "-", "--null", "-T", "-"], cwd=REPO_ROOT, input=files, check=True,
                   stdout=open(root / "src.tar", "wb"))
    subprocess.run(["tar", "-xf", str(root / "src.tar"), "-C", str(src)], check=True)

    build = subprocess.run(recipe(), cwd=ws, env=env, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert "Finished <<< photon_msgs" in build.stdout and "Finished <<< photon " in build.stdout + " "

    def in_install(command: str) -> list[str]:
        return ["bash", "-c", f"source {ws}/install/setup.bash && {command}"]

    check = subprocess.run(in_install("python3 -c 'import photon_msgs.msg, photon_policy; "
                                      "print(photon_msgs.__file__); print(photon_policy.__file__)'"),
                           cwd=ws, env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr[-2000:]
    msgs_file, photon_file = check.stdout.split()
    assert msgs_file.startswith(str(ws / "install")) and photon_file.startswith(str(ws / "install"))

    dry = subprocess.run(in_install(f"{ws}/install/photon/lib/photon/photon up car --dry-run"), cwd=ws, env=env, capture_output=True, text=True,
                         timeout=120)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert f"{ws}/install/photon/share/photon/config/mux.yaml" in dry.stdout

    # An installed node, started as `ros2 run` would, with the installed parameter files: its topic flows.
    cmds = probe.subscribe(AckermannDriveStamped, "/ackermann_cmd")
    share = ws / "install/photon/share/photon/config"
    node = start_node(in_install(f"exec {ws}/install/photon/lib/photon/mux_node --ros-args -r __node:=ackermann_mux "
                                 f"--params-file {share}/mux.yaml --params-file {share}/vehicle.yaml"),
                      cwd=ws, env=env, stdout=open(tmp_path / "mux.log", "wb"), stderr=subprocess.STDOUT)
    try:
        probe.wait_for(lambda: len(cmds) >= 3, 60, "stops on ackermann_cmd from the installed mux")
    finally:
        node.send_signal(signal.SIGINT)
        assert node.wait(timeout=30) == 0, (tmp_path / "mux.log").read_text()
