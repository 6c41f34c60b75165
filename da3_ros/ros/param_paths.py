"""Where a path-valued parameter points, so that params files work from any directory.

Rules, for every path parameter of both nodes (PATH_PARAMS):

- '' stays '' (unset); '~' is expanded; an absolute path is kept as it is;
- `package://<package>/<path>` is `<path>` in the package's share folder (ament_index, else,
  for da3_ros, the source checkout, which has the same config/ launch/ rviz/ folders);
- a relative path is looked up first in the folder of the params file that set the parameter,
  then in the working directory; the first that exists wins. A folder the node writes
  (map.save_path) is taken in the params file's folder (else the working directory) as is;
- `model` is a Hugging Face id or a checkpoint folder: it stays as given when no such folder
  exists (then it is an id).

A path that is not found raises ConfigError naming the parameter and every place looked.
Which params file set a parameter is read from the process's `--ros-args` (`ros2 run`, and
`ros2 launch`, whose launch_logic hands over absolute paths already). Pure: no rclpy.

Why in the ROS shell though it imports nothing of ROS: it implements ROS conventions (params
files given as --ros-args, `package://` URLs through the ament index) for node parameters.
"""
from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from da3_ros.errors import ConfigError

PACKAGE_SCHEME = 'package://'
# path parameter -> 'read' (must exist), 'write' (a folder the node writes), 'model' (an id or
# a folder)
PATH_PARAMS = {'model': 'model', 'model_file': 'read', 'verify_onnx': 'read',
               'rig.calibration_file': 'read',
               'map.load_path': 'read', 'map.save_path': 'write',
               'test.simulated_trajectory': 'read'}
SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the checkout (config/, launch/, rviz/)


def share_dirs(package: str) -> list[Path]:
    """Where package://<package>/ may point: its ament share folder, then (da3_ros only) the
    source checkout."""
    found = []
    try:
        from ament_index_python.packages import get_package_share_directory
        found.append(Path(get_package_share_directory(package)))
    except (ImportError, LookupError, OSError):  # not installed / no AMENT_PREFIX_PATH
        pass
    if package == 'da3_ros' and (SOURCE_ROOT / 'package.xml').is_file():
        found.append(SOURCE_ROOT)
    return found


def candidates(value: str, base_dir: Path | None) -> list[Path]:
    """The places a path parameter's value may mean, in the order they are tried."""
    if value.startswith(PACKAGE_SCHEME):
        package, _, rest = value[len(PACKAGE_SCHEME):].partition('/')
        return [share / rest for share in share_dirs(package)]
    path = Path(value).expanduser()
    if path.is_absolute():
        return [path]
    bases = [base_dir] if base_dir is not None else []
    return list(dict.fromkeys((base / path).absolute() for base in [*bases, Path.cwd()]))


def resolve_path(name: str, value: str, kind: str, base_dir: Path | None = None) -> str:
    """One path parameter's value -> the path it means (see the module docstring). kind:
    'read', 'write' or 'model'. Raises ConfigError naming `name` and every place looked."""
    if not value:
        return value
    package = value.startswith(PACKAGE_SCHEME)
    places = candidates(value, base_dir)
    if places and (kind == 'write' or (not package and Path(value).expanduser().is_absolute())):
        return str(places[0])  # written by the node, or absolute: nothing to look for
    found = next((p for p in places if p.exists()), None)
    if found is not None:
        return str(found)
    if kind == 'model' and not package:
        return value  # a Hugging Face id
    looked = ', '.join(str(p) for p in places) or 'no share folder of that package'
    raise ConfigError(f'parameter {name!r}: {value!r} not found; looked in: {looked}')


def resolve_paths(values: Mapping[str, Any], base_dirs: Mapping[str, Path] | None = None,
                  ) -> dict[str, Any]:
    """values with every path parameter (PATH_PARAMS) resolved; base_dirs: parameter name ->
    folder of the params file that set it (others are relative to the working directory)."""
    base_dirs = base_dirs or {}
    return {name: resolve_path(name, value, PATH_PARAMS[name], base_dirs.get(name))
            if name in PATH_PARAMS and isinstance(value, str) else value
            for name, value in values.items()}


def ros_args(argv: Sequence[str]) -> list[str]:
    """The tokens inside `--ros-args ... [--]` sections of a command line."""
    inside, tokens = False, []
    for token in argv:
        if token == '--ros-args':
            inside = True
        elif token == '--':
            inside = False
        elif inside:
            tokens.append(token)
    return tokens


def node_pattern_matches(pattern: str, node_fqn: str) -> bool:
    """Whether a params file's node key (`da3_depth`, `/ns/da3_depth`, `/**`, `/**/da3_*`)
    applies to the node with fully qualified name node_fqn, as rcl matches them."""
    regex = re.escape('/' + pattern.strip('/'))
    regex = regex.replace(r'/\*\*', '(/[^/]+)*').replace(r'\*', '[^/]*')
    return re.fullmatch(regex, node_fqn) is not None


def file_params(path: Path, node_fqn: str) -> set[str]:
    """Names of the parameters a params file sets for the node (nested keys dotted)."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return set()  # rcl reports an unreadable params file itself

    def names(params: Any, prefix: str = '') -> set[str]:
        if not isinstance(params, dict):
            return {prefix.rstrip('.')}
        return set().union(*(names(v, f'{prefix}{k}.') for k, v in params.items()))

    def sections(tree: Any, key: str = '') -> set[str]:
        if not isinstance(tree, dict):
            return set()
        params = tree.get('ros__parameters')
        mine = isinstance(params, dict) and node_pattern_matches(key, node_fqn)
        found = names(params) if mine else set()
        for child, sub in tree.items():
            if child != 'ros__parameters':
                found |= sections(sub, f'{key}/{str(child).strip("/")}')
        return found

    return sections(data)


def params_file_dirs(node_fqn: str, argv: Sequence[str] | None = None) -> dict[str, Path]:
    """Parameter name -> folder of the params file that set it for the node, from the
    `--params-file` and `-p` arguments of argv (default sys.argv), the last one winning."""
    dirs: dict[str, Path] = {}
    tokens = ros_args(sys.argv if argv is None else argv)
    for option, value in zip(tokens, tokens[1:], strict=False):
        if option == '--params-file':
            path = Path(value).expanduser().absolute()
            dirs.update(dict.fromkeys(file_params(path, node_fqn), path.parent))
        elif option in ('-p', '--param'):  # a command-line value: relative to the cwd
            dirs.pop(value.partition(':=')[0].rpartition(':')[2], None)
    return dirs


def node_paths(values: Mapping[str, Any], node_fqn: str,
               argv: Sequence[str] | None = None) -> dict[str, Any]:
    """A started node's raw parameter values with its path parameters resolved against the
    params files on its command line."""
    return resolve_paths(values, params_file_dirs(node_fqn, argv))

