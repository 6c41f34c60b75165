#!/usr/bin/env bash
# Build the ROS 2 Jazzy runtime for the GPU machine (Python 3.12, no network, no ROS) into
# .carry/ros312/ (repo-relative). Run it HERE (the dev machine); carry the folder; run
# bench/ros_runtime/install.sh there. Idempotent: a re-run reuses the build venv, the downloaded
# wheels and the CMake build dirs, and rewrites the tarball and MANIFEST.txt.
#
# Output (.carry/ros312/):
#   wheels/           the cp312 runtime closure of the ROS wheels: rclpy + rmw_fastrtps_cpp (Fast DDS)
#                     + the message packages da3_ros uses + the ros_wheels_bootstrapper .pth hook;
#                     plus EXTRA_WHEELS (default transforms3d, see below).
#                     Build-only packages (ament_cmake*, rosidl generators/adapter/cli, lint,
#                     gtest/gmock) and non-ROS packages (numpy, pyyaml, empy, lark, catkin_pkg,
#                     setuptools, ...) are left out; the GPU machine has numpy/pyyaml itself.
#                     The wheels are slimmed (headers, duplicate library copies; see
#                     download_wheels): 45 wheels, about 15 MB instead of 43 MB. SLIM=0 carries
#                     them as downloaded.
#   generated.tar.gz  tf2_msgs (third_party/tf2_msgs) and da3_ros's msg/ generated and compiled for
#                     cp312, as paths relative to an install prefix (lib/..., share/...), to be
#                     extracted into the target venv. The hand-written da3_ros/ package (which the
#                     CMake install also copies) is NOT in it: the source checkout on PYTHONPATH
#                     provides it, and its __init__.py extends __path__ (pkgutil.extend_path) so
#                     that da3_ros.msg is still found in the venv's site-packages.
#   MANIFEST.txt      wheel names and sizes, total size, the Python that built it, the date.
#
# How (the recipe of scripts/setup.sh, for Python 3.12):
#   1. build/py312/venv: a python3.12 venv with setup.sh's ROS package list (no torch, no project
#      deps). It is the CMake build environment for the messages, and its installed ros-*
#      distributions (name==version) are the source of the wheel list.
#   2. The exported CMake files of the message wheels hard-code the wheel builder's include paths
#      (/opt/python/cp312-cp312/...; cp311 for the cp311 wheels): patched to the venv's.
#   3. tf2_msgs and da3_ros are configured/built/installed with plain CMake into the build venv,
#      exactly as setup.sh does for .venv (build dirs build/py312/{tf2_msgs,da3_ros}).
#      Why not a separate staging prefix: CMake refuses to export the numpy include dir
#      (build/py312/venv/..., inside the source tree /work/main) for da3_ros unless it lies
#      inside CMAKE_INSTALL_PREFIX ("INTERFACE_INCLUDE_DIRECTORIES property contains path ...
#      which is prefixed in the source directory").
#   4. The files the two installs wrote (install_manifest.txt) are filtered and packed.
#   5. The ros-* distributions minus DROP_RE below are `pip download`ed for cp312 manylinux
#      x86_64 into build/py312/wheels-dl/, then slimmed into wheels/.
#
# Env: PY312 (default: pyenv's 3.12.1, else python3.12 on PATH), JOBS (default 2), SLIM (1),
# EXTRA_WHEELS (default transforms3d==0.4.2).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
JOBS=${JOBS:-2}
PY312=${PY312:-/root/.pyenv/versions/3.12.1/bin/python3.12}
[[ -x $PY312 ]] || PY312=$(command -v python3.12)
B="$ROOT/build/py312"        # everything this script builds (never build/tf2_msgs, build/da3_ros)
V="$B/venv"                  # cp312 build venv (generators + runtime)
CARRY="$ROOT/.carry/ros312"  # the result, carried to the GPU machine
# transforms3d: da3_ros.ros.tf_buffer (so both nodes) imports it and the GPU machine's Python has
# none (1.4 MB, pure Python). The SLAM node also needs gtsam, which it lacks too: add
# EXTRA_WHEELS='transforms3d==0.4.2 gtsam==4.3.0' (+35 MB; installed --no-deps, its declared
# pytest dependency is not carried; untested there) when the SLAM node must run there.
# EXTRA_WHEELS= (empty) carries ROS only.
EXTRA_WHEELS=${EXTRA_WHEELS-transforms3d==0.4.2}

# ROS wheels that are installed in the build venv but not needed at run time.
# (a) build-only: CMake/ament build system, IDL tools, code generators, meta wheels.
# (b) found unneeded EMPIRICALLY (greedy, one wheel at a time): a fresh python3.12 venv holding
#     only numpy/pyyaml/typing-extensions (+ opencv/transforms3d for import coverage) plus the
#     remaining wheels and generated.tar.gz still imports every da3_ros module whose non-ROS deps
#     are present, round-trips all 27 message types da3_ros uses, runs a node with parameters
#     (descriptor ranges, --params-file), a std_srvs/Trigger service+client, a timer, both
#     executors, logging, and exchanges a 1600x900 Image, a RigDepth and a /tf_static TFMessage
#     between two processes. Every wheel NOT listed here failed that test when left out (missing
#     lib*.so or Python module): e.g. rosidl-parser (the generated msg modules import
#     rosidl_parser.definition), rosidl-generator-py (import_type_support), ament-index-python
#     (imported by rclpy), rosidl-dynamic-typesupport*, tracetools, the *_msgs that rcl links.
#     lark/empy (rosidl_parser's grammar, generators) are not needed.
DROP_RE='^ros-(jazzy-.*'`                          # (a) py3-none-any meta wheels (dependencies only)
  `'|ament-cmake.*|ament-package'`                 # (a) CMake build system
  `'|python-cmake-module|fastrtps-cmake-module|rmw-implementation-cmake'`  # (a) CMake modules
  `'|rosidl-(adapter|cli|cmake)'`                  # (a) IDL tools
  `'|rosidl-generator-(c|cpp|type-description)'`   # (a) generators (generator-py stays, see above)
  `'|rosidl-(core|default)-generators'`            # (a) meta packages
  `'|rosidl-(core|default)-runtime'`               # (b) meta packages (ament index/CMake only)
  `'|rosidl-pycommon|rosidl-typesupport-interface|rosidl-runtime-cpp'`  # (b) generator helpers, headers
  `'|ament-index-cpp|domain-coordinator'`          # (b) C++ ament index, test port helper
  `'|foonathan-memory-vendor|libyaml-vendor|spdlog-vendor'`  # (b) static / bundled in ros_*.libs
  `'|rmw-implementation'`                          # (b) rcl links librmw_fastrtps_cpp directly;
  `')$'                                            #     this wheel holds no library at all

now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
T0=$(now_ms)
log() { printf '[build_cp312 %6.1fs] %s\n' "$(( $(now_ms) - T0 ))e-3" "$*"; }

git_exclude() {
  local excl="$ROOT/.git/info/exclude"
  mkdir -p "$(dirname "$excl")"
  touch "$excl"
  grep -qxF '/.carry/' "$excl" || echo '/.carry/' >>"$excl"
}

make_venv() {
  [[ -x "$V/bin/python" ]] || "$PY312" -m venv "$V"
  "$V/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 12), sys.version'
  # setup.sh's ROS list without torch and the project's other deps.
  "$V/bin/python" -m pip install -q -r "$ROOT/scripts/ros_requirements.txt" \
    2> >(grep -v "^WARNING: Location 'file:" >&2)
}

# patch_cmake_paths, cmake_build
. "$ROOT/scripts/ros_cmake.sh"

pack_generated() {
  # Only what the two installs wrote (install_manifest.txt, which has no final newline: hence
  # awk 1 instead of cat), relative to $V, minus:
  #   include/, share/*/cmake/          C/C++ headers and CMake exports: build time only (the
  #                                     exports also name this machine's absolute paths)
  #   lib/da3_ros/                      the hand-written node scripts (scripts/depth_node, ...)
  #   share/da3_ros/{launch,config,rviz} copies of hand-written files (found in the checkout)
  #   site-packages/da3_ros/*           except msg/ and the generated typesupport *.so: the
  #                                     hand-written package (and its __init__.py, which replaced
  #                                     the generated empty one) comes from the source checkout
  #   site-packages/da3_ros-*.egg-info  its top_level.txt claims all of da3_ros for pip
  local list="$B/generated.files" sp
  sp=$("$V/bin/python" -c "import sysconfig; print(sysconfig.get_path('purelib', vars={'base': '', 'platbase': ''}).lstrip('/'))")
  [[ $sp == lib/python3.12/site-packages ]] || { echo "unexpected site-packages dir $sp" >&2; return 1; }
  awk 1 "$B/tf2_msgs/install_manifest.txt" "$B/da3_ros/install_manifest.txt" \
    | sed "s#^$V/##" | sort -u \
    | grep -vE -e '^include/' -e '^share/[^/]+/cmake/' -e '^lib/da3_ros/' -e '^share/da3_ros/(launch|config|rviz)/' \
        -e "^$sp/da3_ros-[^/]*\\.egg-info/" >"$list.tmp" || true
  # In site-packages/da3_ros/ keep only msg/... and the top-level typesupport *.so.
  awk -v p="$sp/da3_ros/" '{
      if (index($0, p) == 1) {
        rest = substr($0, length(p) + 1)
        if (rest ~ /^msg\// || (rest !~ /\// && rest ~ /\.so$/)) print
        next
      }
      print }' "$list.tmp" >"$list"
  rm -f "$list.tmp"
  # Every listed file must exist (a stale manifest would otherwise break tar).
  (cd "$V" && while read -r f; do [[ -e $f ]] || { echo "missing $V/$f" >&2; exit 1; }; done <"$list")
  mkdir -p "$CARRY"
  tar -C "$V" --owner=0 --group=0 --numeric-owner -czf "$CARRY/generated.tar.gz.tmp" -T "$list"
  mv "$CARRY/generated.tar.gz.tmp" "$CARRY/generated.tar.gz"
  log "generated.tar.gz: $(wc -l <"$list") files, $(du -k "$CARRY/generated.tar.gz" | cut -f1) KiB"
}

download_wheels() {
  # The venv's installed ros-* distributions as name==version, minus DROP_RE.
  local reqs="$B/wheels.txt"
  "$V/bin/python" - "$DROP_RE" >"$reqs" <<'EOF'
import re, sys
from importlib.metadata import distributions
drop = re.compile(sys.argv[1])
names = {}
for d in distributions():
    name = re.sub(r'[-_.]+', '-', d.metadata['Name']).lower()
    if name.startswith('ros-') and not drop.match(name):
        names[name] = d.version
for name in sorted(names):
    print(f'{name}=={names[name]}')
EOF
  log "keeping $(wc -l <"$reqs") ros-* distributions (of $("$V/bin/python" -m pip list 2>/dev/null | grep -c '^ros-'))"
  # Non-ROS run-time deps of the nodes that the GPU machine lacks (checked there: its Python
  # has torch, numpy, yaml, cv2, scipy, ... but not these), as name==version.
  local extra
  for extra in $EXTRA_WHEELS; do
    [[ $extra == *==* ]] || { echo "EXTRA_WHEELS entry $extra: need name==version" >&2; return 1; }
    echo "$extra" >>"$reqs"
  done
  # Download into build/py312/wheels-dl (kept: re-runs reuse it), then copy or slim into wheels/.
  local dl="$B/wheels-dl"
  mkdir -p "$dl"
  # Tags the GPU machine (x86_64, glibc >= 2.28) accepts; wheels already there are reused.
  "$V/bin/python" -m pip download -q --no-deps --only-binary=:all: -d "$dl" \
    --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    -r "$reqs" 2> >(grep -v "^WARNING: Location 'file:" >&2)
  rm -rf "$CARRY/wheels"
  mkdir -p "$CARRY/wheels"
  "$V/bin/python" - "$reqs" "$dl" "$CARRY/wheels" "${SLIM:-1}" <<'EOF'
"""Copy the listed wheels from the download dir to wheels/; with SLIM=1 (default) rewrite them
without what is dead weight at run time (file names stay; RECORD loses the dropped lines):
  1. *.data/data/include/ (C/C++ headers) and *.data/data/share/<pkg>/cmake/ (CMake exports);
  2. in *.data/data/lib/, byte-identical copies of a library under its non-SONAME names (the
     fastrtps wheel stores libfastrtps.so, .so.2.14 and .so.2.14.5 as three 15.7 MB files; only
     the SONAME .so.2.14 is ever loaded: NEEDED entries and rosidl's dlopen use SONAMEs);
  3. byte-identical vendored libraries present in several ros_*.libs/ dirs (auditwheel copies
     libcrypto/libssl/tinyxml2/lttng/urcu/yaml into every wheel's .libs): kept in the first
     wheel only. This relies on the bootstrapper hook, which puts EVERY site-packages/ros_*.libs
     dir on LD_LIBRARY_PATH; the wheels' own RPATHs ($ORIGIN/../../../ros_X.libs from
     lib/) point outside the venv after installation anyway, so nothing resolves through them.
Verified with the same run-time test as DROP_RE."""
import hashlib, re, subprocess, sys, tempfile, zipfile
from pathlib import Path
reqs, src, dst, slim = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4] == '1'
canon = lambda n: re.sub(r'[-_.]+', '-', n).lower()
want = dict(l.split('==') for l in reqs.read_text().split())
wheels = [w for w in sorted(src.glob('*.whl'))
          if want.get(canon(w.name.split('-')[0])) == w.name.split('-')[1]]
assert len(wheels) == len(want), (len(wheels), len(want))
seen_libs = {}  # (file name, sha256) of a ros_*.libs/ file -> the wheel that keeps it


def soname(data):
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        out = subprocess.run(['readelf', '-d', f.name], capture_output=True, text=True).stdout
    m = re.search(r'\(SONAME\)\s+Library soname: \[(.+?)\]', out)
    return m.group(1) if m else None


saved = 0
for w in wheels:
    out = dst / w.name
    if not slim:
        out.write_bytes(w.read_bytes())
        continue
    zin = zipfile.ZipFile(w)
    infos = zin.infolist()
    names = {i.filename for i in infos}
    drop = set()
    for i in infos:
        n = i.filename
        if re.match(r'[^/]+\.data/data/(include/|share/[^/]+/cmake/)', n):
            drop.add(n)
        elif re.match(r'[^/]+\.data/data/lib/[^/]+\.so(\.[0-9]+)*$', n):
            data = zin.read(n)
            so = soname(data)
            twin = n.rsplit('/', 1)[0] + '/' + so if so else None
            if so and twin != n and twin in names and zin.read(twin) == data:
                drop.add(n)
        elif re.match(r'ros_[^/]+\.libs/[^/]+$', n):
            key = (n.split('/')[-1], hashlib.sha256(zin.read(n)).hexdigest())
            if seen_libs.setdefault(key, w.name) != w.name:
                drop.add(n)
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as zout:
        for i in infos:
            if i.filename in drop:
                saved += i.compress_size
                continue
            data = zin.read(i.filename)
            if i.filename.endswith('.dist-info/RECORD'):
                data = ''.join(l + '\n' for l in data.decode().splitlines()
                               if l.split(',')[0] not in drop).encode()
            zout.writestr(i, data, compress_type=zipfile.ZIP_DEFLATED)
print(f'[build_cp312] slimmed wheels: {saved / 1e6:.1f} MB (compressed) of dead weight left out'
      if slim else '[build_cp312] SLIM=0: wheels copied as downloaded', file=sys.stderr)
EOF
}

write_manifest() {
  {
    echo "# ROS 2 Jazzy runtime for cp312 (bench/ros_runtime/build_cp312.sh)"
    echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m) $(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-?}"), $(ldd --version 2>/dev/null | head -1 | sed 's/.* //' | sed 's/^/glibc /')"
    echo "python: $("$V/bin/python" -c 'import sys; print(sys.version.split()[0])') ($PY312)"
    echo "wheels: $([[ ${SLIM:-1} == 1 ]] && echo 'slimmed (no headers/CMake exports/duplicate libraries; see download_wheels)' || echo 'as downloaded (SLIM=0)'); extra: ${EXTRA_WHEELS:-none}"
    echo "numpy (generated code compiled against): $("$V/bin/python" -c 'import numpy; print(numpy.__version__)')"
    echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet -- msg third_party/tf2_msgs CMakeLists.txt 2>/dev/null || echo ' (msg/ or CMakeLists.txt modified)')"
    echo
    echo "# wheels/ (bytes  file)"
    (cd "$CARRY/wheels" && for w in *.whl; do printf '%9d  %s\n' "$(stat -c %s "$w")" "$w"; done)
    echo
    printf '%9d  generated.tar.gz\n' "$(stat -c %s "$CARRY/generated.tar.gz")"
    "$V/bin/python" - "$CARRY" <<'EOF'
import sys
from pathlib import Path
c = Path(sys.argv[1])
w = sum(p.stat().st_size for p in (c / 'wheels').glob('*.whl'))
g = (c / 'generated.tar.gz').stat().st_size
n = len(list((c / 'wheels').glob('*.whl')))
print(f'\ntotal: {n} wheels {w / 1e6:.1f} MB + generated.tar.gz {g / 1e6:.2f} MB = {(w + g) / 1e6:.1f} MB')
EOF
  } >"$CARRY/MANIFEST.txt"
}

git_exclude
log "build venv $V ($PY312)"; make_venv
log 'patch exported CMake paths'; patch_cmake_paths
log 'build tf2_msgs'; cmake_build "$ROOT/third_party/tf2_msgs" "$B/tf2_msgs"
log 'build da3_ros messages'; cmake_build "$ROOT" "$B/da3_ros"
log 'pack generated.tar.gz'; pack_generated
log 'download wheels'; download_wheels
write_manifest
log "done: $(tail -n 1 "$CARRY/MANIFEST.txt")"
