#!/usr/bin/env bash
# GTSAM for the SLAM node on the GPU machine (Python 3.12, no network): the cp312 wheel of the
# version scripts/setup.sh installs, without what the SLAM does not load (gtsam/Data, 45 MB of
# example datasets; tests; examples; gtsam_unstable), as one xz archive that
# bench/gpu_node_e2e.py --prepare unpacks into the venv's site-packages. 35 MB of wheel become
# about 11 MB, which keeps one call's upload under its 64 MiB with the ROS runtime beside it.
#
#   bench/ros_runtime/pack_gtsam.sh      # -> .carry/gtsam/gtsam_trim.tar.xz
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VERSION=4.3.0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 -d "$work" "gtsam==$VERSION"
(cd "$work" && python3 -m zipfile -e gtsam-*.whl tree)
mkdir -p "$ROOT/.carry/gtsam"
tar -C "$work/tree" -cf - --exclude=gtsam/Data --exclude=gtsam/tests --exclude=gtsam/examples \
  gtsam gtsam.libs "gtsam-$VERSION.dist-info" | xz -T2 -6 > "$ROOT/.carry/gtsam/gtsam_trim.tar.xz"
ls -la "$ROOT/.carry/gtsam/gtsam_trim.tar.xz"
