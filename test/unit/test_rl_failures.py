"""rl/failures.py: a checkpoint that cannot be loaded is a clear error before any worker starts."""
import pytest

from photon_policy.learning.checkpoint import CheckpointError
from photon_policy.rl.failures import main


def test_a_missing_or_corrupt_policy_is_refused_naming_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="absent.pt"):
        main(["--policy", str(tmp_path / "absent.pt"), "--seeds", "1", "--workers", "1"])
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt.pt"):
        main(["--policy", str(corrupt), "--seeds", "1", "--workers", "1"])
