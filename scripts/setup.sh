#!/usr/bin/env bash
# Create .venv in the checkout and install everything Photon needs: ROS 2 Kilted
# wheels (rclpy over Fast DDS), the interface packages built from msgs/, torch
# (CPU), Gymnasium CarRacing, and photon itself (editable). Idempotent: a run
# with nothing changed only checks stamps and imports.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
start=$(date +%s)

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
# colcon on a robot must not take the venv's share/*/package.xml for workspace packages.
touch "$VENV/COLCON_IGNORE"

stamp="$VENV/.photon-requirements.sha256"
want=$(cat scripts/requirements.txt setup.py setup.cfg | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing Python requirements"
  "$PY" -m pip install -q --upgrade pip
  "$PY" -m pip install -q -r scripts/requirements.txt
  "$PY" -m pip install -q --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp"
else
  echo "[setup] Python requirements up to date"
fi

VENV="$VENV" bash scripts/build_msgs.sh

"$PY" - <<'PYCHECK'
import rclpy, torch, gymnasium  # noqa: F401
from ackermann_msgs.msg import AckermannDriveStamped  # noqa: F401
from photon_msgs.msg import EpisodeStatus  # noqa: F401
from tf2_msgs.msg import TFMessage  # noqa: F401
import photon_policy.cli  # noqa: F401
PYCHECK
echo "[setup] ready in $(( $(date +%s) - start )) s: $VENV/bin/photon"
