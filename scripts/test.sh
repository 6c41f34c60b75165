#!/usr/bin/env bash
# The one test command: runs pytest in .venv from the repo root. Arguments go to pytest
# (e.g. `bash scripts/test.sh test/ros -k exchange`). Run scripts/setup.sh first.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
V="$ROOT/.venv"
if [[ ! -x "$V/bin/python" ]]; then
  echo "test.sh: $V is missing; run: bash scripts/setup.sh" >&2
  exit 1
fi

# Node tests talk over loopback only; every test also picks its own ROS_DOMAIN_ID.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
# The wheels' .pth hook does not set it; ament_index lookups (share/, launch) need it.
export AMENT_PREFIX_PATH="$V"
# 64 MiB shared-memory segments, so large messages are not dropped.
# Fast DDS 2.x (Jazzy) reads FASTRTPS_..., Fast DDS 3.x reads FASTDDS_...
export FASTRTPS_DEFAULT_PROFILES_FILE="$ROOT/config/fastdds_big_shm.xml"
export FASTDDS_DEFAULT_PROFILES_FILE="$ROOT/config/fastdds_big_shm.xml"

status=0
"$V/bin/python" -m pytest -q "$@" || status=$?

# Remove shared-memory segments left behind by killed participants.
"$V/bin/fastdds" shm clean >/dev/null 2>&1 || true

if [[ $status -eq 5 ]]; then
  echo 'test.sh: pytest collected no tests; treating that as a failure' >&2
  status=1
fi
exit "$status"
