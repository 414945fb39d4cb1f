"""A robot runs the car's nodes without a physics engine: in an interpreter where importing Gymnasium
or Box2D fails, every node module that runs on a car imports, and `photon eval world-model
--ground-truth none` evaluates a bag."""
import importlib.util
import subprocess
import sys
import textwrap

import torch

from test_bag_reader import drive, image, odom, write_bag  # noqa: F401
from test_world_model import scrolling_episode, tiny_config
from world_model_node.checkpoint import save_checkpoint
from world_model_node.model import WorldModel

CAR_MODULES = ["photon_policy.policy.node", "world_model_node.node", "photon_policy.bags.recorder_node",
               "photon_policy.drivers.camera_node", "photon_policy.drivers.joy_node",
               "photon_policy.drivers.teleop_node", "photon_policy.drivers.mux_node", "photon_policy.shadow.node"]
"""Node modules that run on a car (those not built yet are skipped by the check)."""

NO_SIMULATOR = textwrap.dedent("""
    import importlib.abc, sys
    class NoSimulator(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("gymnasium", "Box2D"):
                raise ImportError(f"{name} must not be imported on a car")
            return None
    sys.meta_path.insert(0, NoSimulator())
""")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_SIMULATOR + textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=300)


def test_the_blocker_blocks():
    result = _run("import photon_policy.sim.carracing")
    assert result.returncode != 0 and "must not be imported on a car" in result.stderr


def test_car_node_modules_import_without_the_simulator():
    present = [m for m in CAR_MODULES if importlib.util.find_spec(m.rsplit(".", 1)[0]) is not None
               and importlib.util.find_spec(m) is not None]
    assert "photon_policy.policy.node" in present and "world_model_node.node" in present
    result = _run("import importlib\nfor m in %r:\n    importlib.import_module(m)\nprint('ok')" % present)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_world_model_evaluation_of_a_bag_without_the_simulator(tmp_path):
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "wm.pt", WorldModel(tiny_config(context_steps=3, horizon_steps=2)))
    ep = scrolling_episode("car", frames=120, seed=3)
    records = []
    for k in range(len(ep)):
        ns = 5_000_000_000 + 20_000_000 * k
        msg = image(ns, k, "rgb8")
        msg.height, msg.width, msg.step = 32, 32, 96
        msg.data = ep.frames[k].tobytes()
        records += [("/camera/image_raw", ns + 1, msg), ("/drive", ns + 2, drive(ns, *ep.commands[k])),
                    ("/odom", ns, odom(ns, 10))]
    write_bag(tmp_path / "bags" / "car_run", records)
    out = tmp_path / "out" / "eval.json"
    result = _run(f"""
        import sys
        from photon_policy.cli import main
        code = main(["eval", "world-model", "--ckpt", {str(ckpt)!r}, "--data", {str(tmp_path / 'bags')!r},
                     "--ground-truth", "none", "--json", {str(out)!r}])
        assert "gymnasium" not in sys.modules and "Box2D" not in sys.modules
        sys.exit(code)
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert out.is_file() and "no simulator ground truth" in result.stdout
