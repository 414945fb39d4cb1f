"""The trainers' shared command line (learning/run_args.py): config files layer in order, a later
file's values winning, and the run's arguments win over all of them; a bad file is named."""
import argparse

import pytest

from photon_policy.learning.run_args import add_run_arguments, config_values
from photon_policy.rl.ppo import RLConfig


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_run_arguments(parser, "RLConfig", data=False)
    return parser.parse_args(argv)


def test_later_config_files_win_and_arguments_win_over_files(tmp_path):
    base, arm = tmp_path / "base.yaml", tmp_path / "arm.yaml"
    base.write_text("kl: 0.3\nspeed_reference: 50.0\nseeds: 700-899\ntakeover_cost: 10.0\n")
    arm.write_text("takeover_cost: 30.0\nkl: 0.1\n")
    values = config_values(_parse(["--out", str(tmp_path / "run"), "--config", str(base), "--config", str(arm),
                                   "--seed", "7"]), RLConfig)
    assert values == {"kl": 0.1, "speed_reference": 50.0, "seeds": "700-899", "takeover_cost": 30.0,
                      "out_dir": str(tmp_path / "run"), "seed": 7}
    config = RLConfig(policy="p.pt", reward="r.pt", **values)
    assert (config.kl, config.takeover_cost, config.seeds) == (0.1, 30.0, "700-899")
    one = config_values(_parse(["--out", "r", "--config", str(arm)]), RLConfig)
    assert one == {"takeover_cost": 30.0, "kl": 0.1, "out_dir": "r"}


@pytest.mark.parametrize("text, message", [("kl: 0.3\nklx: 1\n", "unknown training settings ['klx']"),
                                           ("- 1\n- 2\n", "expected a mapping of RLConfig fields")])
def test_a_bad_layer_is_named(tmp_path, text, message):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("kl: 0.3\n")
    bad.write_text(text)
    with pytest.raises(ValueError, match=rf"{bad}: .*") as err:
        config_values(_parse(["--out", "r", "--config", str(good), "--config", str(bad)]), RLConfig)
    assert message in str(err.value)
