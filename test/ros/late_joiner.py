"""Two real rclpy processes, a talker and a listener that joins late: the listener starts only
after the talker printed TF_STATIC_PUBLISHED, so latched (TRANSIENT_LOCAL) data must reach it.

Each run gets its own ROS_DOMAIN_ID (`first_domain` + 0..99, hashed from the test name and
pid) and PYTHONPATH=<repo>, so the helpers import the checkout's da3_ros.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

from node_process import ROOT, stop, wait_for_line

HERE = Path(__file__).resolve().parent


def talker_then_late_listener(tmp_path: Path, test_name: str, first_domain: int,
                              talker: list[str], listener: list[str], wait_s: float) -> dict:
    """Run test/ros/<talker[0]> with args talker[1:], then the listener likewise; return the
    listener's last stdout line as JSON. Both must exit 0; their stderr is in tmp_path."""
    domain = zlib.crc32(f'{test_name}:{os.getpid()}'.encode()) % 100 + first_domain
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
    env.pop('ROS_LOCALHOST_ONLY', None)
    procs = {}
    try:
        for name, (script, *args) in (('talker', talker), ('listener', listener)):
            with open(tmp_path / f'{name}.err', 'wb') as err:
                procs[name] = subprocess.Popen([sys.executable, str(HERE / script), *args],
                                               env=env, stdout=subprocess.PIPE, stderr=err)
            if name == 'talker':
                wait_for_line(procs[name], b'TF_STATIC_PUBLISHED', wait_s)
        out, _ = procs['listener'].communicate(timeout=wait_s + 30)
        procs['talker'].communicate(timeout=wait_s + 30)
    finally:
        for proc in procs.values():
            stop(proc)
    errors = {p: (tmp_path / f'{p}.err').read_text() for p in procs}
    assert [p.returncode for p in procs.values()] == [0, 0], (out, errors)
    return json.loads(out.decode().strip().splitlines()[-1])
