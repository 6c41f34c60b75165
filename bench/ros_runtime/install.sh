#!/usr/bin/env bash
# Install the carried ROS 2 Jazzy runtime (made by bench/ros_runtime/build_cp312.sh on the dev
# machine) into a venv on the GPU machine: Python 3.12, no network, no ROS, CUDA torch and numpy
# installed system-wide.
#
#   bench/ros_runtime/install.sh VENV_DIR [CARRY_DIR]
#
# CARRY_DIR defaults to <repo root>/.carry/ros312 (wheels/, generated.tar.gz, MANIFEST.txt).
# Steps (idempotent; about 5-10 s):
#   1. VENV_DIR: `$PYTHON -m venv --system-site-packages` (PYTHON defaults to python3) unless
#      VENV_DIR/bin/python exists, in which case that venv is used as it is. --system-site-packages
#      keeps the machine's CUDA torch, numpy, pyyaml, opencv ... visible, but only those of the
#      BASE interpreter: on the GPU machine python3 is itself a venv (/opt/torch/.venv, base
#      /usr), so the new venv also gets a _base_python_site_dirs.pth naming $PYTHON's extra site
#      dirs (verified there: without it, torch is invisible). Without ensurepip (Debian/Ubuntu
#      without python3-venv) it falls back to --without-pip and the system's pip.
#   2. pip install --no-index --no-deps --no-compile wheels/*.whl (offline; the wheels' own
#      dependency metadata would ask for build tools and numpy, hence --no-deps).
#   3. generated.tar.gz (tf2_msgs + da3_ros messages, compiled for cp312) extracted into VENV_DIR.
#   4. Smoke test from cwd / with PYTHONPATH=<repo root>: import rclpy, tf2_msgs.msg, da3_ros.msg,
#      RigDepth(), then rclpy.init + a node (loads rmw_fastrtps_cpp) with discovery on localhost.
#
# Running nodes afterwards: VENV_DIR/bin/python -m da3_ros.<...> with PYTHONPATH=<repo root>
# (the checkout's da3_ros/__init__.py extends __path__ so that the venv's da3_ros/msg is found),
# ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, a ROS_DOMAIN_ID, and for large messages
# FASTRTPS_DEFAULT_PROFILES_FILE=<repo root>/config/fastdds_big_shm.xml (its 64 MiB shared-memory
# segment: with the default 512 KiB, large best-effort messages are lost).
# Traps: site-packages/ros_wheels_bootstrapper.pth re-execs every interpreter
# start of this venv once, with LD_LIBRARY_PATH=VENV_DIR/lib + ros_*.libs and the guard
# _ROS_WHEELS_BOOTSTRAP_COMPLETE=1. A child process that inherits the guard must also inherit
# LD_LIBRARY_PATH (or drop both); `python -S` disables the hook and then rclpy cannot load.
# AMENT_PREFIX_PATH is not set by the hook: export AMENT_PREFIX_PATH=VENV_DIR if ament_index is used.
# The hand-written da3_ros is NOT installed into the venv: every process (test helpers and
# nodes started by subprocess too) needs PYTHONPATH=<repo root>, or `import da3_ros` finds only
# the namespace portion with msg/. RMW_IMPLEMENTATION is ignored: these wheels link rcl straight
# to librmw_fastrtps_cpp. After a SIGKILLed node: VENV_DIR/bin/fastdds shm clean.
set -euo pipefail

t_start=${EPOCHREALTIME/[.,]/}
if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 VENV_DIR [CARRY_DIR]" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mkdir -p "$(dirname "$1")"
V=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
CARRY=$(cd "${2:-$ROOT/.carry/ros312}" && pwd)
PYTHON=${PYTHON:-python3}
die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "[install.sh] $*"; }

[[ -f $CARRY/generated.tar.gz ]] || die "$CARRY/generated.tar.gz missing (run bench/ros_runtime/build_cp312.sh on the dev machine)"
shopt -s nullglob
wheels=("$CARRY"/wheels/*.whl)
shopt -u nullglob
((${#wheels[@]})) || die "no wheels in $CARRY/wheels"

# 1. The venv.
if [[ ! -x $V/bin/python ]]; then
  say "creating $V ($("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])'))"
  if ! "$PYTHON" -m venv --system-site-packages "$V" 2>"$V.venv-err"; then
    # No ensurepip: a pip-less venv still sees the system pip through --system-site-packages,
    # and that pip installs into the venv (sys.prefix), PEP 668 does not apply inside a venv.
    cat "$V.venv-err" >&2
    say "venv with pip failed; retrying --without-pip (uses the system's pip)"
    rm -rf "$V"
    "$PYTHON" -m venv --system-site-packages --without-pip "$V"
  fi
  rm -f "$V.venv-err"
  # --system-site-packages only exposes the BASE interpreter's site-packages. Packages that
  # $PYTHON sees from elsewhere stay invisible: the user site (~/.local/..., pip install --user;
  # venvs disable it) or, when $PYTHON is itself a venv (docker images often put /opt/venv/bin
  # first on PATH), that venv's site-packages. Add every such directory (with its .pth files)
  # after the venv's own site-packages, so that the new venv imports what $PYTHON imports.
  "$PYTHON" - "$V" <<'EOF'
import json, os, subprocess, sys
venv = sys.argv[1]
out = subprocess.run([os.path.join(venv, 'bin', 'python'), '-c', 'import json, sys; print(json.dumps(sys.path))'],
                     capture_output=True, text=True, check=True).stdout
have = {os.path.realpath(p) for p in json.loads(out) if p}
extra = [p for p in sys.path[1:] if p and os.path.isdir(p) and os.path.realpath(p) not in have]
pth = os.path.join(venv, 'lib', f'python{sys.version_info[0]}.{sys.version_info[1]}', 'site-packages',
                   '_base_python_site_dirs.pth')
if extra:
    with open(pth, 'w') as f:
        f.write(''.join(f'import site; site.addsitedir({p!r})\n' for p in extra))
    print(f'[install.sh] base interpreter dirs added to the venv ({pth}): {extra}')
EOF
fi
# The wheels and the generated extensions are cp312: any other Python cannot load them.
"$V/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' \
  || die "$V/bin/python is Python $("$V/bin/python" -c 'import sys; print(sys.version.split()[0])'); the carried ROS runtime is cp312 only"
SP=$("$V/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
# The .pth hook looks for ros_*.libs in exactly sys.prefix/lib/python3.12/site-packages, and the
# tarball's paths are lib/python3.12/site-packages/...
[[ $SP -ef $V/lib/python3.12/site-packages ]] \
  || die "site-packages of $V is $SP, not $V/lib/python3.12/site-packages"
"$V/bin/python" -m pip --version >/dev/null 2>&1 || die "no pip for $V/bin/python (install python3-venv or python3-pip)"
# Run-time needs that are NOT carried (the GPU machine has them system-wide).
"$V/bin/python" -c 'import numpy, yaml' \
  || die "numpy and PyYAML must be importable by $V/bin/python (system site-packages)"

# 2. The wheels (offline). A wheel already installed at the same version is skipped by pip.
t=${EPOCHREALTIME/[.,]/}
"$V/bin/python" -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check \
  "${wheels[@]}"
say "pip install ${#wheels[@]} wheels: $(((${EPOCHREALTIME/[.,]/} - t) / 1000)) ms"

# 3. The generated messages. Paths are relative to the prefix: lib/, lib/python3.12/..., share/.
t=${EPOCHREALTIME/[.,]/}
tar -xzf "$CARRY/generated.tar.gz" -C "$V" --no-same-owner
say "extract generated.tar.gz: $(((${EPOCHREALTIME/[.,]/} - t) / 1000)) ms"

# 4. Smoke test, from / so that only PYTHONPATH brings in the checkout. A fresh domain and
# localhost-only discovery keep it off the network and away from running nodes.
t=${EPOCHREALTIME/[.,]/}
(cd / && env -u _ROS_WHEELS_BOOTSTRAP_COMPLETE PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
  ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-101}" \
  "$V/bin/python" - "$ROOT" "$V" <<'EOF'
import os, sys
root, venv = sys.argv[1], sys.argv[2]
import rclpy, tf2_msgs.msg, da3_ros.msg
from da3_ros.msg import RigDepth
RigDepth()
import da3_ros
assert os.path.realpath(da3_ros.__file__).startswith(os.path.realpath(root) + os.sep), \
    f'da3_ros comes from {da3_ros.__file__}, not the checkout {root}'
for mod in (da3_ros.msg, tf2_msgs.msg, rclpy):
    assert os.path.realpath(mod.__file__).startswith(os.path.realpath(venv) + os.sep), mod.__file__
rclpy.init()
node = rclpy.create_node('ros_runtime_smoke')
node.create_publisher(RigDepth, 'smoke', 1)
node.destroy_node()
rclpy.shutdown()
print(f'[install.sh] smoke ok: rclpy {rclpy.__file__.rsplit("/", 2)[0]}, da3_ros {da3_ros.__path__}, '
      f'RMW {rclpy.get_rmw_implementation_identifier()}')
EOF
)
say "smoke test: $(((${EPOCHREALTIME/[.,]/} - t) / 1000)) ms"
say "done in $(((${EPOCHREALTIME/[.,]/} - t_start) / 1000)) ms: $V"
