"""Where the package's data files live: the checkout when run from source, else the install's share/."""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def share_dir() -> Path:
    """The checkout (editable install, tests) or `share/photon` of a colcon/pip install."""
    if (REPO_ROOT / "package.xml").is_file() and (REPO_ROOT / "config").is_dir():
        return REPO_ROOT
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory("photon"))
    except (ImportError, LookupError) as exc:
        raise FileNotFoundError(
            "cannot find photon's config/: not run from a checkout and no `photon` "
            "package in the ament index (source your install's setup.bash)") from exc


def config_dir() -> Path:
    return share_dir() / "config"


def shipped_model(filename: str, what: str) -> Path:
    """A checkpoint shipped in models/ (made by the command in README.md); FileNotFoundError naming it."""
    path = share_dir() / "models" / filename
    if not path.is_file():
        raise FileNotFoundError(f"no shipped {what} at {path}: train one (see README) or pass a checkpoint")
    return path
