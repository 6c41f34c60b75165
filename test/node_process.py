"""Node tests' process plumbing, shared by the tests of both nodes (test/nodes): an environment
with its own ROS domain, starting and stopping a node module, and running a helper script
to completion with both logs in the failure message.

Every process gets its own ROS_DOMAIN_ID in 201..230 (test/ros/test_ros_exchange.py uses
1..100, test/ros/test_ros_round_trip.py 101..200; Fast DDS allows <= 232), hashed from the
test name and pid, and PYTHONPATH=<repo> so the checkout's da3_ros is imported (the venv's
installed copy only supplies da3_ros.msg).
"""
from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def node_env(test_name: str) -> dict:
    domain = zlib.crc32(f'{test_name}:{os.getpid()}'.encode()) % 30 + 201
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
    env.pop('ROS_LOCALHOST_ONLY', None)
    return env


def start_node(module: str, params_file: Path, env: dict, log: Path,
               *extra: str, cwd: Path = ROOT) -> subprocess.Popen:
    """`python -m <module> --ros-args --params-file <file> <extra>` in cwd, output to `log`
    (`python <module>` for a script: an absolute path ending in .py)."""
    target = [module] if module.endswith('.py') else ['-m', module]
    with open(log, 'wb') as out:
        return subprocess.Popen([sys.executable, *target, '--ros-args', '--params-file',
                                 str(params_file), *extra],
                                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_script(script: Path, args: list[str], env: dict, node: subprocess.Popen,
               node_log: Path, timeout_s: float) -> None:
    """Run a helper script to completion; fail with both logs if it or the node fails."""
    try:
        done = subprocess.run([sys.executable, str(script), *args], env=env,
                              capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f'{script.name} timed out; node log:\n'
                             f'{node_log.read_text()[-4000:]}') from err
    assert done.returncode == 0, (
        f'{script.name} exit {done.returncode}\n{done.stderr.decode()[-3000:]}\n'
        f'node (alive: {node.poll() is None}):\n{node_log.read_text()[-4000:]}')


def wait_for_line(proc: subprocess.Popen, line: bytes, timeout_s: float) -> None:
    """Read proc's stdout until `line` arrives; fail on exit or after timeout_s seconds."""
    import select
    import time

    deadline = time.monotonic() + timeout_s
    fd, buffered = proc.stdout.fileno(), b''
    while line not in buffered.splitlines():
        assert proc.poll() is None, f'talker exited early ({proc.returncode}): {buffered!r}'
        remaining_s = deadline - time.monotonic()
        assert remaining_s > 0, f'no {line!r} within {timeout_s} s: {buffered!r}'
        if select.select([fd], [], [], min(remaining_s, 0.5))[0]:
            buffered += os.read(fd, 4096)
