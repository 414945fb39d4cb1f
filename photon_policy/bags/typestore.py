"""The rosbags Typestore for Photon's bags: ROS 2 Kilted plus our interface packages.

Our types are read at runtime from the .msg files, so a bag written or read here
always matches the definitions that were built: `msgs/<pkg>/msg/*.msg` in a
checkout, `share/<pkg>/msg/*.msg` (found through the ament index) on an install.
Standard types the store already holds (tf2_msgs/TFMessage) keep their definition.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.base import Nodetype
from rosbags.typesys.store import Typestore

from photon_policy.paths import REPO_ROOT, share_dir

INTERFACE_PACKAGES = ("ackermann_msgs", "tf2_msgs", "photon_msgs")


def msg_dirs() -> dict[str, Path]:
    """`<pkg>/msg` directory of each interface package, from the checkout or the ament index."""
    try:
        checkout = share_dir() / "msgs"  # a checkout; an install's share/photon has no msgs/
    except FileNotFoundError:
        checkout = REPO_ROOT / "msgs"
    dirs: dict[str, Path] = {}
    for pkg in INTERFACE_PACKAGES:
        if (checkout / pkg / "msg").is_dir():
            dirs[pkg] = checkout / pkg / "msg"
            continue
        share = _installed_msg_dir(pkg)
        if share is not None:
            dirs[pkg] = share
    return dirs


def _installed_msg_dir(pkg: str) -> Path | None:
    """`share/<pkg>/msg` of an installed package, through the ament index; None if not found."""
    try:
        from ament_index_python.packages import get_package_share_directory
        share = Path(get_package_share_directory(pkg)) / "msg"
    except (ImportError, LookupError, OSError, ValueError):  # OSError: no AMENT_PREFIX_PATH
        return None
    return share if share.is_dir() else None


def interface_types(dirs: dict[str, Path] | None = None) -> dict:
    """Parse every .msg file of our interface packages into a rosbags types dict."""
    types: dict = {}
    for pkg, directory in (dirs if dirs is not None else msg_dirs()).items():
        for path in sorted(directory.glob("*.msg")):
            types.update(get_types_from_msg(path.read_text(), f"{pkg}/msg/{path.stem}"))
    return types


@lru_cache(maxsize=1)
def photon_typestore() -> Typestore:
    """ROS 2 Kilted + ackermann_msgs, tf2_msgs (if missing) and photon_msgs. Cached: treat as read-only."""
    return new_typestore()


def new_typestore(**extra_msgs: str) -> Typestore:
    """A new store like photon_typestore's, plus `pkg/msg/Type="<.msg text>"` definitions of its own
    (e.g. a foreign bag's types, in tests)."""
    store = get_typestore(Stores.ROS2_KILTED)
    types = interface_types()
    missing = [name for name in ("photon_msgs/msg/EpisodeStatus", "ackermann_msgs/msg/AckermannDriveStamped")
               if name not in types]
    if missing:
        raise FileNotFoundError(
            f"cannot find the .msg files of {', '.join(missing)}: not in {REPO_ROOT / 'msgs'} "
            "and not in the ament index (source your install's setup.bash)")
    for name, text in extra_msgs.items():
        types.update(get_types_from_msg(text, name))
    store.register({k: v for k, v in types.items() if k not in store.fielddefs})
    return store


def _referenced_types(fields: list) -> list[str]:
    names = []
    for _, (nodetype, arg) in fields:
        if nodetype == Nodetype.NAME:
            names.append(arg)
        elif nodetype in (Nodetype.ARRAY, Nodetype.SEQUENCE) and arg[0][0] == Nodetype.NAME:
            names.append(arg[0][1])
    return names


def ensure_type(store: Typestore, typename: str) -> None:
    """Register `pkg/msg/Type` (and what it references) from its installed .msg if the store lacks it.

    Raises KeyError naming the type when no definition can be found.
    """
    pending, found = [typename], {}
    while pending:
        name = pending.pop()
        if name in store.fielddefs or name in found:
            continue
        pkg, _, short = name.partition("/msg/")
        directory = msg_dirs().get(pkg) or _installed_msg_dir(pkg)
        path = directory / f"{short}.msg" if directory is not None else None
        if path is None or not path.is_file():
            raise KeyError(f"no message definition for '{name}' (not in ROS 2 Kilted, msgs/ or the ament index)")
        types = get_types_from_msg(path.read_text(), name)
        found.update(types)
        for _, fields in types.values():
            pending.extend(_referenced_types(fields))
    if found:
        store.register(found)
