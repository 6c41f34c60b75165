# Shell functions shared by scripts/setup.sh (the dev venv) and bench/ros_runtime/build_cp312.sh
# (the GPU machine's Python 3.12): building ROS 2 message packages with plain CMake into a venv
# that holds the PyPI ROS wheels. Source it after setting V (the venv) and JOBS.

patch_cmake_paths() {
  # The message wheels' exported CMake files hard-code the include paths of the machine that
  # built the wheels (/opt/python/cpXY-cpXY/...): point them at this venv's Python and numpy.
  # Needed again after any pip (re)install of a ros-* wheel; `|| true` because grep -l exits 1
  # once nothing is left to patch.
  local pyinc npinc
  pyinc=$("$V/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
  npinc=$("$V/bin/python" -c 'import numpy; print(numpy.get_include())')
  { grep -rlE '/opt/python/cp3[0-9]+-cp3[0-9]+' "$V/share" --include='*.cmake' || true; } \
    | xargs -r sed -i -E \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#${npinc}#g" \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#${pyinc}#g"
}

cmake_build() {  # cmake_build SOURCE_DIR BUILD_DIR: generate, build and install into $V
  local generator=Ninja
  command -v ninja >/dev/null || generator='Unix Makefiles'
  cmake -S "$1" -B "$2" -G "$generator" -Wno-dev \
    -DCMAKE_PREFIX_PATH="$V" -DCMAKE_INSTALL_PREFIX="$V" \
    -DPython3_EXECUTABLE="$V/bin/python" -DBUILD_TESTING=OFF >"$2.log" 2>&1 \
    || { cat "$2.log" >&2; return 1; }
  cmake --build "$2" -j "$JOBS" >>"$2.log" 2>&1 || { tail -n 60 "$2.log" >&2; return 1; }
  cmake --install "$2" >>"$2.log" 2>&1 || { tail -n 60 "$2.log" >&2; return 1; }
}
