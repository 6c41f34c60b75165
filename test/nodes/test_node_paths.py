"""`ros2 run da3_ros depth_node --ros-args --params-file <file>` from another working directory
(a real process in /tmp): the relative rig.calibration_file and model inside the params file
mean the file's folder (issue 15 item 4); a missing one stops the node naming the parameter
and every place looked. The resolver's rules: test/ros/test_param_paths.py."""
import shutil
import signal
import time
from pathlib import Path

from node_harness import ROOT, ros_env, stop, write_params
from node_process import start_node

NUSCENES_CAMS = ['CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_BACK_RIGHT', 'CAM_BACK', 'CAM_BACK_LEFT',
                 'CAM_FRONT_LEFT']
ELSEWHERE = Path('/tmp')


def rig_params(model: str, calibration_file: str) -> dict:
    return {'cameras': [f'/{c}' for c in NUSCENES_CAMS], 'model': model, 'device': 'cpu',
            'process_res': 140, 'metric_mode': 'rig_calibration', 'pose_conditioning': True,
            'rig.source': 'yaml', 'rig.calibration_file': calibration_file}


def wait_for_exit_or_text(node, log: Path, text: str, timeout_s: float = 120.0) -> str:
    """The log once it holds `text` or the node has exited."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in log.read_text() or node.poll() is not None:
            break
        time.sleep(0.2)
    return log.read_text()


def test_relative_paths_in_a_params_file_mean_its_folder(tmp_path, request, da3_small_dir):
    folder = tmp_path / 'my_rig'
    (folder / 'calibration').mkdir(parents=True)
    shutil.copy(ROOT / 'config' / 'nuscenes_6cam_calibration.yaml', folder / 'calibration')
    (folder / 'ckpt').symlink_to(da3_small_dir)
    params = write_params(folder / 'rig.yaml', rig_params(
        'ckpt', 'calibration/nuscenes_6cam_calibration.yaml'))
    log = tmp_path / 'node.log'
    node = start_node('da3_ros.nodes.depth_node', params, ros_env(request.node.nodeid), log,
                      cwd=ELSEWHERE)
    try:
        text = wait_for_exit_or_text(node, log, 'metric_mode rig_calibration')
        assert node.poll() is None, f'exit {node.returncode}:\n{text}'
        assert "6 cameras ['CAM_FRONT'" in text, text
        node.send_signal(signal.SIGINT)
        assert node.wait(timeout=60) == 0, log.read_text()
    finally:
        stop(node)


def test_a_missing_relative_path_names_the_parameter_and_the_places_looked(tmp_path, request):
    folder = tmp_path / 'my_rig'
    folder.mkdir()
    params = write_params(folder / 'rig.yaml', rig_params('depth-anything/DA3-SMALL',
                                                          'calibration/missing.yaml'))
    log = tmp_path / 'node.log'
    node = start_node('da3_ros.nodes.depth_node', params, ros_env(request.node.nodeid), log,
                      cwd=ELSEWHERE)
    try:
        assert node.wait(timeout=60) == 2, log.read_text()
    finally:
        stop(node)
    text = log.read_text()
    assert "parameter 'rig.calibration_file': 'calibration/missing.yaml' not found" in text
    assert f'looked in: {folder}/calibration/missing.yaml, /tmp/calibration/missing.yaml' in text
