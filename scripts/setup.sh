#!/usr/bin/env bash
# The one setup command: builds .venv with ROS 2 Jazzy (PyPI wheels), torch and the test tools,
# generates tf2_msgs and da3_ros's messages into it, and smoke-tests the result.
# Idempotent: re-running only adds what is missing and rebuilds incrementally.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
V="$ROOT/.venv"
PYTHON_BOOTSTRAP=${PYTHON_BOOTSTRAP:-python3}
JOBS=${JOBS:-2}

now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
elapsed() { local ms=$(($(now_ms) - $1)); printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)); }
T_START=$(now_ms)
step() {  # step NAME CMD...: run CMD and print its wall time
  local name=$1 t0
  shift
  echo "[setup] ${name} ..."
  t0=$(now_ms)
  "$@"
  printf '[setup] %-36s %6s s\n' "${name}" "$(elapsed "$t0")"
}

system_tools() {
  local missing=()
  command -v cmake >/dev/null || missing+=(cmake)
  command -v g++ >/dev/null || missing+=(g++)
  command -v ninja >/dev/null || command -v make >/dev/null || missing+=(ninja-build)
  if ! "$PYTHON_BOOTSTRAP" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
    missing+=(python3-dev)
  fi
  # Debian's own python3 has no ensurepip without python3-venv.
  if [[ ! -x "$V/bin/python" ]] && ! "$PYTHON_BOOTSTRAP" -c 'import ensurepip' 2>/dev/null; then
    missing+=(python3-venv)
  fi
  if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
      local extra=()
      [[ " ${missing[*]} " == *' python3-venv '* ]] && extra+=(python3-venv)
      apt-get update
      DEBIAN_FRONTEND=noninteractive apt-get install -y \
        cmake ninja-build g++ python3-dev "${extra[@]}"
    else
      echo "setup.sh: missing system packages: ${missing[*]} (apt-get install them)" >&2
      return 1
    fi
  fi
}

make_venv() {
  if [[ ! -x "$V/bin/python" ]]; then
    "$PYTHON_BOOTSTRAP" -m venv "$V"
  fi
  # The ROS wheels are cp311 only.
  "$V/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' || {
    echo "setup.sh: $V must be Python 3.11 (the ROS Jazzy wheels are cp311)" >&2
    return 1
  }
}

pip_install() {
  # One pip command so that the resolver sees every constraint. [fastrtps] brings the RMW;
  # the ament/rosidl extras are undeclared build deps; setuptools <80 keeps colcon installable.
  "$V/bin/python" -m pip install -q -r "$ROOT/scripts/ros_requirements.txt" \
    torch==2.13.0 \
    einops addict omegaconf safetensors huggingface-hub scipy rosbags transforms3d plyfile \
    onnx onnxruntime mcap-ros2-support opencv-python-headless==4.11.0.86 pillow \
    gtsam==4.3.0 tqdm pyyaml \
    pytest pytest-timeout ruff==0.17.6
}

pip_install_references() {
  # The official DA3 (test reference only) and evo pin versions that clash with this environment,
  # so they go in without deps. Later pip runs that install something list their missing deps as
  # "dependency conflicts"; that message is expected and harmless.
  "$V/bin/python" -m pip install -q --no-deps depth-anything-3==0.1.1 evo==1.38.1
}

pip_install_triton_interpreter() {
  # Triton beside the venv, not in it: the CPU torch stays Triton-free (as CPU-only installs
  # are); test/model/test_qk_norm_rope_interpreted.py runs the model's Triton kernel on the
  # CPU through Triton's interpreter from there.
  [ -d "$V/triton-interpreter/triton" ] && return 0
  "$V/bin/python" -m pip install -q --no-deps --target "$V/triton-interpreter" triton==3.6.0
}

# patch_cmake_paths, cmake_build
. "$ROOT/scripts/ros_cmake.sh"

pip_install_self() {
  # Editable install: the `da3-ros` console script and pip metadata. It must run BEFORE the CMake
  # install of da3_ros. The CMake install also writes an egg-info named da3_ros (made by
  # rosidl_generator_py's ament_python_install_package), and when pip finds only that one it
  # "uninstalls" it through its top_level.txt, deleting site-packages/da3_ros including the
  # generated da3_ros/msg (seen on a fresh venv: `No module named 'da3_ros.msg'`). Once pip's own
  # dist-info exists, pip uninstalls that one instead, and the CMake install that follows puts
  # back anything pip removed, so re-runs end in the same state. Outside the repo root, `import
  # da3_ros` finds the CMake-installed copy first (the editable finder comes last on
  # sys.meta_path): re-run this script after changing Python sources.
  "$V/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$ROOT"
}

smoke_import() {
  local code='import rclpy, torch, tf2_msgs.msg, da3_ros.msg; da3_ros.msg.RigDepth()'
  (cd / && "$V/bin/python" -c "$code")       # installed copy only
  (cd "$ROOT" && "$V/bin/python" -c "$code")  # source checkout first on sys.path
}

mkdir -p "$ROOT/build"
step 'system tools' system_tools
step 'venv' make_venv
step 'pip install (ROS, torch, test deps)' pip_install
step 'pip install --no-deps (references)' pip_install_references
step 'pip install --target (Triton for its CPU interpreter)' pip_install_triton_interpreter
step 'patch exported CMake paths' patch_cmake_paths
step 'build tf2_msgs' cmake_build "$ROOT/third_party/tf2_msgs" "$ROOT/build/tf2_msgs"
step 'pip install -e . (no deps)' pip_install_self
step 'build da3_ros' cmake_build "$ROOT" "$ROOT/build/da3_ros"
step 'smoke import' smoke_import
printf '[setup] %-36s %6s s\n' 'total' "$(elapsed "$T_START")"
