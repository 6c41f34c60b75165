"""package.xml declares every runtime import of the package (issue 15, item 1: rosdep).

After `rosdep install --from-paths src` on Ubuntu 24.04 + Jazzy both nodes must import. So every
third-party module that da3_ros/, launch/ and scripts/ import is mapped here, explicitly, to the
rosdep key that installs it, and that key must be an <exec_depend> (or <depend>) of package.xml.
An import with no entry in the table fails the test, so a new import has to be mapped first.

Rosdep keys were checked against rosdistro's rosdep/python.yaml (ros/rosdistro):
  in the file: python3-numpy, python3-yaml, python3-opencv, python3-tqdm, python3-transforms3d
  (Ubuntu: the apt package), python3-onnxruntime-pip; python3-pytorch-pip (pip `torch`; an
  alias of the python-pytorch-pip entry, ros/rosdistro#35399).
  python3-plyfile (the PLY codec, geometry/ply.py): the key issue 17 names; not yet checked
  against rosdep/python.yaml (Ubuntu's apt package is python3-plyfile).
  added by merged rosdistro pull requests: python3-rosbags-pip (ros/rosdistro#37795),
  python3-huggingface-hub-pip (ros/rosdistro#48989).
  no key: safetensors; onnx; tensorrt; evo. gtsam: the key `gtsam` is the ROS package
  ros-jazzy-gtsam (C++ only, no Python module), and a pip key for it was declined
  (ros/rosdistro#35940). These two are installed with pip, as docs/packaging.md says.
"""
from __future__ import annotations

import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_XML = ROOT / 'package.xml'
README = ROOT / 'docs' / 'packaging.md'

# Import name -> the rosdep key that provides it (ROS packages are their own key).
ROSDEP_KEY = {
    'rclpy': 'rclpy',
    'rcl_interfaces': 'rcl_interfaces',
    'ament_index_python': 'ament_index_python',  # package:// parameter paths
    'builtin_interfaces': 'builtin_interfaces',
    'std_msgs': 'std_msgs',
    'std_srvs': 'std_srvs',
    'sensor_msgs': 'sensor_msgs',
    'geometry_msgs': 'geometry_msgs',
    'nav_msgs': 'nav_msgs',
    'diagnostic_msgs': 'diagnostic_msgs',
    'visualization_msgs': 'visualization_msgs',
    'tf2_msgs': 'tf2_msgs',
    'launch': 'launch',
    'launch_ros': 'launch_ros',
    'numpy': 'python3-numpy',
    'yaml': 'python3-yaml',
    'cv2': 'python3-opencv',
    'tqdm': 'python3-tqdm',
    'transforms3d': 'python3-transforms3d',
    'plyfile': 'python3-plyfile',
    'torch': 'python3-pytorch-pip',
    # Triton ships with the Linux torch wheels; qk_norm_rope falls back to eager without it.
    'triton': 'python3-pytorch-pip',
    'huggingface_hub': 'python3-huggingface-hub-pip',
    # `da3-ros process` (bag input and output) needs it.
    'rosbags': 'python3-rosbags-pip',
}

# Runtime imports that no rosdep key installs: docs/packaging.md must say how they are installed.
NO_ROSDEP_KEY = {
    'safetensors': 'no key in rosdistro',
    'gtsam': 'the `gtsam` key is ros-jazzy-gtsam, which has no Python module',
}

# Imported lazily, only by an optional feature, each behind its own error message: not declared.
OPTIONAL = {
    'onnx': 'ONNX export only (`da3-ros export`, engine cache)',
    # python3-onnxruntime-pip exists but would force the CPU build on a CUDA machine.
    'onnxruntime': 'ONNX Runtime backend only; onnxruntime or onnxruntime-gpu is the user\'s pick',
    'tensorrt': 'TensorRT engine build only; comes with the NVIDIA stack, not rosdep',
    'evo': 'trajectory evaluation only (a test reference)',
}

# Keys that must not be declared: they resolve to something that does not provide the import.
WRONG_KEYS = {'gtsam': 'ros-jazzy-gtsam is C++ only: `import gtsam` fails'}


def _sources() -> list[Path]:
    files = sorted((ROOT / 'da3_ros').rglob('*.py')) + sorted((ROOT / 'launch').glob('*.py'))
    return files + [ROOT / 'scripts' / 'depth_node', ROOT / 'scripts' / 'slam_node']


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module name -> files that import it (stdlib and da3_ros itself left out)."""
    found: dict[str, set[str]] = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split('.')[0]
                if top in sys.stdlib_module_names or top == 'da3_ros':
                    continue
                found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def _package() -> ET.Element:
    return ET.parse(PACKAGE_XML).getroot()


def _runtime_keys() -> set[str]:
    root = _package()
    return {e.text.strip() for tag in ('depend', 'exec_depend') for e in root.iter(tag)}


def test_package_xml_is_format_3():
    root = _package()
    assert root.tag == 'package'
    assert root.get('format') == '3'
    assert root.findtext('name') == 'da3_ros'


def test_the_scan_sees_the_imports():
    imports = _third_party_imports()
    for name in ('rclpy', 'torch', 'safetensors', 'gtsam', 'rcl_interfaces', 'launch_ros'):
        assert name in imports, name


def test_every_import_is_mapped():
    tables = ROSDEP_KEY.keys() | NO_ROSDEP_KEY.keys() | OPTIONAL.keys()
    unmapped = {name: sorted(files) for name, files in _third_party_imports().items()
                if name not in tables}
    assert not unmapped, f'map these imports to a rosdep key in this test: {unmapped}'


def test_every_runtime_import_is_declared():
    declared = _runtime_keys()
    missing = {name: ROSDEP_KEY[name] for name in _third_party_imports()
               if name in ROSDEP_KEY and ROSDEP_KEY[name] not in declared}
    assert not missing, f'package.xml lacks <exec_depend> for {missing}'


def test_no_key_that_does_not_provide_the_import():
    declared = _runtime_keys()
    wrong = {key: why for key, why in WRONG_KEYS.items() if key in declared}
    assert not wrong, wrong


def test_readme_says_how_imports_without_a_key_are_installed():
    text = README.read_text()
    section = text[text.index('## Inside a ROS 2 workspace'):]
    section = section[:section.index('\n## ', 1)]
    for name in NO_ROSDEP_KEY:
        assert f'{name}' in section, name
    assert 'pip install' in section and 'PEP 668' in section
    assert 'PIP_BREAK_SYSTEM_PACKAGES' in section
