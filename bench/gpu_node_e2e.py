"""The depth node end to end, as a robot sees it: real node process, real DDS, a separate camera
publisher and a separate subscriber, measured from the outside.

On the GPU machine (the ROS runtime carried as .carry/ros312, see bench/ros_runtime/):

    python3 bench/gpu_node_e2e.py --prepare --out $OUT/e2e --models da3-small da3-large \
        --inputs raw compressed --segments 10:60 20:60 30:60

On any machine with the project's venv (a small CPU run, what CI's test does):

    .venv/bin/python bench/gpu_node_e2e.py --device cpu --models da3-small --process-res 56 \
        --inputs raw --segments 2:4 --out /tmp/e2e

Per model and input transport: a random-weight checkpoint in the official format (seeded;
DA3 weights cannot be downloaded here), the depth node (`python -m da3_ros.nodes.depth_node`
with config/depth_nuscenes_6cam.yaml: 6 cameras of 1600 x 900, rig calibration, pose
conditioning, metric, depth + confidence + camera_info + per-camera clouds + fused cloud +
RigDepth), bench/e2e_publisher.py replaying the nuScenes sample at each rate, and
bench/e2e_recorder.py logging every output. Meanwhile this script samples the node's CPU time
(/proc/<pid>/stat) and GPU memory (nvidia-smi, where present). Results: <out>/<run>/ with the
raw logs, report.json (bench/e2e_metrics.py: rates, set accounting, drops by cause, latency
median / p99 per output group, node stages, CPU, GPU memory, first-set time) and one summary
<out>/e2e_summary.json; a table is printed at the end. Nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / 'bench'), str(ROOT / 'test')]
from e2e_metrics import cpu_percent, output_topics, run_report, slam_report  # noqa: E402

CAMERAS = ['CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_BACK_RIGHT', 'CAM_BACK', 'CAM_BACK_LEFT',
           'CAM_FRONT_LEFT']
VENV_ENV = 'DA3_E2E_VENV'


def default_data() -> Path:
    carried = ROOT / '.carry' / 'data' / 'nuscenes_mini_6cam_sample'
    if carried.is_dir():
        return carried
    from shared_data import DATA
    return DATA / 'nuscenes_mini_6cam_sample'


def prepare(venv: Path) -> None:
    """Install what the GPU machine lacks into `venv` and re-run this script under it: the
    carried ROS runtime (.carry/ros312, bench/ros_runtime/install.sh) and, for the SLAM node,
    GTSAM (.carry/gtsam/*.tar.xz: the cp312 wheel's gtsam/, gtsam.libs/ and dist-info without
    its 45 MB of example data, unpacked into site-packages)."""
    if os.environ.get(VENV_ENV):
        return
    subprocess.run(['bash', str(ROOT / 'bench' / 'ros_runtime' / 'install.sh'), str(venv)],
                   check=True)
    python = str(venv / 'bin' / 'python')
    site = subprocess.run([python, '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'],
                          capture_output=True, text=True, check=True).stdout.strip()
    for archive in sorted((ROOT / '.carry' / 'gtsam').glob('*.tar.xz')):
        subprocess.run(['tar', '-xJf', str(archive), '-C', site], check=True)
    argv = [a for a in sys.argv if a != '--prepare']
    # The checkout's da3_ros is not installed into the venv: PYTHONPATH brings it in.
    env = dict(os.environ, **{VENV_ENV: str(venv), 'PYTHONPATH': os.pathsep.join(
        [str(ROOT), os.environ.get('PYTHONPATH', '')])})
    os.execve(str(venv / 'bin' / 'python'), [str(venv / 'bin' / 'python'), *argv], env)


def write_checkpoint(model: str, folder: Path, seed: int = 0) -> Path:
    """A seeded random-weight checkpoint of `model` in the official format (config.json +
    model.safetensors), written once."""
    if (folder / 'model.safetensors').is_file():
        return folder
    import torch

    from da3_ros.model import build
    from da3_ros.model.checkpoint import save
    torch.manual_seed(seed)
    return Path(save(build(model), folder))


def node_params(args, checkpoint: Path, transport: str, path: Path) -> Path:
    """config/depth_nuscenes_6cam.yaml with this run's model, transport and device."""
    import yaml
    config = yaml.safe_load((ROOT / 'config' / 'depth_nuscenes_6cam.yaml').read_text())
    params = config['da3_depth']['ros__parameters']
    params.update({'model': str(checkpoint), 'image_transport': [transport],
                   'device': args.device, 'precision': args.precision,
                   'compile': args.compile, 'process_res': args.process_res,
                   'rig.calibration_file': str(ROOT / 'config' /
                                               'nuscenes_6cam_calibration.yaml'),
                   'diagnostics_period_s': 0.5})
    path.write_text(yaml.safe_dump(config))
    return path


def slam_params(args, checkpoint: Path, path: Path) -> Path:
    """The SLAM node on the 6 cameras: one network call per chunk of chunk.size rig sets."""
    import yaml
    params = {'input_mode': 'cameras', 'cameras': [f'/{c}' for c in CAMERAS],
              'image_topic': 'image_raw', 'image_transport': 'raw', 'model': str(checkpoint),
              'device': args.device, 'precision': args.precision,
              'process_res': args.process_res, 'sync.slop_s': 0.05, 'sync.max_wait_s': 0.5,
              'chunk.size': args.slam_chunk[0], 'chunk.overlap': args.slam_chunk[1],
              'frames.odom': '', 'publish.tf_period_s': 0.1, 'diagnostics_period_s': 0.5}
    path.write_text(yaml.safe_dump({'da3_slam': {'ros__parameters': params}}))
    return path


class Sampler(threading.Thread):
    """CPU seconds of a process every period_s, GPU memory of it every 2 s (nvidia-smi)."""

    def __init__(self, pid: int, period_s: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.period_s = pid, period_s
        self.cpu: list[tuple[int, float]] = []
        self.gpu_mib: list[tuple[int, float]] = []
        self.stop = threading.Event()
        self.tick = os.sysconf('SC_CLK_TCK')
        self.smi = shutil.which('nvidia-smi')

    def cpu_seconds(self) -> float | None:
        try:
            fields = Path(f'/proc/{self.pid}/stat').read_text().rsplit(')', 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / self.tick   # utime + stime

    def gpu_memory(self) -> float | None:
        out = subprocess.run([self.smi, '--query-compute-apps=pid,used_memory',
                              '--format=csv,noheader,nounits'], capture_output=True, text=True)
        for line in out.stdout.splitlines():
            pid, mib = (v.strip() for v in line.split(','))
            if pid == str(self.pid):
                return float(mib)
        return None

    def run(self) -> None:
        last_gpu = 0.0
        while not self.stop.wait(self.period_s):
            seconds = self.cpu_seconds()
            if seconds is not None:
                self.cpu.append((time.time_ns(), seconds))
            if self.smi and time.monotonic() - last_gpu > 2.0:
                last_gpu = time.monotonic()
                mib = self.gpu_memory()
                if mib is not None:
                    self.gpu_mib.append((time.time_ns(), mib))


def ros_env(domain: int) -> dict:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               FASTRTPS_DEFAULT_PROFILES_FILE=str(ROOT / 'config' / 'fastdds_big_shm.xml'),
               FASTDDS_DEFAULT_PROFILES_FILE=str(ROOT / 'config' / 'fastdds_big_shm.xml'),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]),
               PYTHONUNBUFFERED='1')
    env.pop('ROS_LOCALHOST_ONLY', None)
    return env


def stop_process(proc: subprocess.Popen, timeout_s: float = 30.0) -> int:
    """SIGINT (Ctrl-C), then SIGKILL after timeout_s; the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def run_one(args, model: str, transport: str, checkpoint: Path, domain: int,
            slam: bool = False) -> dict:
    """One node process (the depth node, or with slam the SLAM node), publisher and
    recorder; the run's report."""
    name = f'{"slam_" * slam}{model}_{transport}'
    folder = args.out / name
    folder.mkdir(parents=True, exist_ok=True)
    if slam:
        module, params = 'slam_node', slam_params(args, checkpoint, folder / 'params.yaml')
        segments, extra = [args.slam_segment], ['--warmup-sets', '0']
    else:
        module = 'depth_node'
        params = node_params(args, checkpoint, transport, folder / 'params.yaml')
        segments, extra = args.segments, []
    env = ros_env(domain)
    py = sys.executable
    node_log = open(folder / 'node.log', 'wb')
    started = time.time_ns()
    node = subprocess.Popen([py, '-m', f'da3_ros.nodes.{module}', '--ros-args',
                             '--params-file', str(params)], env=env, cwd=ROOT,
                            stdout=node_log, stderr=subprocess.STDOUT)
    sampler = Sampler(node.pid)
    sampler.start()
    stop_file = folder / 'recorder.stop'
    stop_file.unlink(missing_ok=True)
    ready_file = folder / 'recorder.ready'
    ready_file.unlink(missing_ok=True)
    recorder = subprocess.Popen([py, str(ROOT / 'bench' / 'e2e_recorder.py'), '--cameras',
                                 *CAMERAS, '--stop-file', str(stop_file), '--out',
                                 str(folder / 'received.json'), '--ready-file',
                                str(ready_file), *['--slam'] * slam],
                                env=env, cwd=ROOT, stdout=open(folder / 'recorder.log', 'wb'),
                                stderr=subprocess.STDOUT)
    # the first set's outputs count (first-set time): cameras start once the recorder sees
    # the node's publishers
    deadline = time.monotonic() + args.timeout_s
    while not ready_file.exists() and time.monotonic() < deadline and node.poll() is None:
        time.sleep(0.1)
    publisher = subprocess.run([py, str(ROOT / 'bench' / 'e2e_publisher.py'), '--data',
                                str(args.data), '--transport', transport, '--segments',
                                *segments, '--gap-s', str(args.gap_s), '--out',
                                str(folder / 'published.json'), '--timeout-s',
                                str(args.timeout_s), *extra], env=env, cwd=ROOT,
                               capture_output=True, text=True)
    (folder / 'publisher.log').write_text(publisher.stdout + publisher.stderr)
    stop_file.touch()
    recorder.wait(timeout=120)
    sampler.stop.set()
    node_exit = stop_process(node)
    node_log.close()
    result = {'model': model, 'transport': transport, 'node_exit': node_exit,
              'publisher_exit': publisher.returncode}
    if publisher.returncode != 0:
        result['error'] = publisher.stderr[-2000:]
        print(f'{name}: publisher failed: {publisher.stderr[-2000:]}\nnode log:\n'
              f'{(folder / "node.log").read_text()[-3000:]}', flush=True)
        return result
    published = json.loads((folder / 'published.json').read_text())
    received = json.loads((folder / 'received.json').read_text())
    if slam:
        report = {**result, **slam_report(received),
                  'sets_published': sum(len(s['stamps']) for s in published['segments']),
                  'cpu_percent': cpu_percent(sampler.cpu, published['segments'][0]['start_ns'],
                                             published['segments'][-1]['end_ns']),
                  'gpu_process_max_mib': max((m for _, m in sampler.gpu_mib), default=None),
                  'node_log_tail': (folder / 'node.log').read_text()[-3000:]}
        (folder / 'report.json').write_text(json.dumps(report, indent=1))
        return report
    topics = output_topics(CAMERAS)
    report = run_report(published, received, topics, sampler.cpu)
    first_output = min((r[1] for t in topics['depth'] for r in received.get(t, [])),
                       default=None)
    last_diag = received['diagnostics'][-1][1] if received['diagnostics'] else {}
    report.update(result, device_path_check=last_diag.get('device_path_check'),
                  node_start_to_first_depth_s=(
        None if first_output is None else (first_output - started) / 1e9),
        gpu_process_max_mib=max((m for _, m in sampler.gpu_mib), default=None),
        node_log_tail=(folder / 'node.log').read_text()[-3000:])
    (folder / 'report.json').write_text(json.dumps(report, indent=1))
    (folder / 'cpu_gpu_samples.json').write_text(json.dumps(
        {'cpu': sampler.cpu, 'gpu_mib': sampler.gpu_mib}))
    return report


def pack(args, name: str) -> None:
    """With --pack: the run's folder becomes <out>/<name>.tgz beside <out>/<name>.json (its
    report), two files per run (the GPU machine returns few files)."""
    folder = args.out / name
    if not args.pack or not folder.is_dir():
        return
    if (folder / 'report.json').is_file():
        shutil.copy(folder / 'report.json', args.out / f'{name}.json')
    subprocess.run(['tar', '-czf', str(args.out / f'{name}.tgz'), '-C', str(args.out), name],
                   check=True)
    shutil.rmtree(folder)


def summary_rows(report: dict) -> list[str]:
    rows = []
    for seg in report.get('segments', []):
        lat = {g: seg.get(f'latency_{g}', {}) for g in ('depth', 'cloud', 'fused_cloud')}
        fmt = lambda v: '-' if v is None else f'{v:.1f}'  # noqa: E731
        drops = ','.join(f'{k}={v}' for k, v in seg['drops'].items()) or '0'
        stages = seg['stages_ms']
        top = ' '.join(f'{k}={v:.1f}' for k, v in sorted(stages.items(),
                                                        key=lambda kv: -kv[1])[:5])
        rows.append(
            f"{report['model']:<10} {report['transport']:<10} {seg['rate_hz']:>4g} Hz: "
            f"out {seg['output_rate_hz']:5.1f} Hz ({seg['complete_sets_received']}/"
            f"{seg['sets_published']} sets) drops {drops}; latency ms depth "
            f"{fmt(lat['depth'].get('median_ms'))}/{fmt(lat['depth'].get('p99_ms'))} clouds "
            f"{fmt(lat['cloud'].get('median_ms'))}/{fmt(lat['cloud'].get('p99_ms'))} fused "
            f"{fmt(lat['fused_cloud'].get('median_ms'))}/"
            f"{fmt(lat['fused_cloud'].get('p99_ms'))}; cpu {fmt(seg['cpu_percent'])} %; "
            f"gpu {fmt(seg['gpu_max_allocated_mb'])} MiB; stages {top}")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', type=Path, required=True)
    parser.add_argument('--models', nargs='*', default=['da3-small', 'da3-large'])
    parser.add_argument('--inputs', nargs='+', default=['raw', 'compressed'],
                        choices=('raw', 'compressed'))
    parser.add_argument('--segments', nargs='+', default=['10:60', '20:60', '30:60'],
                        help='RATE_HZ:SECONDS per segment, one node process for all')
    parser.add_argument('--gap-s', type=float, default=2.0)
    parser.add_argument('--timeout-s', type=float, default=240.0,
                        help="the publisher's longest wait for the node (start, compile)")
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--precision', default='auto')
    parser.add_argument('--compile', action=argparse.BooleanOptionalAction, default=None,
                        help='torch.compile the network (default: on CUDA)')
    parser.add_argument('--process-res', type=int, default=504)
    parser.add_argument('--data', type=Path, default=None, help='nuscenes_mini_6cam_sample')
    parser.add_argument('--checkpoints', type=Path, default=Path('/tmp/da3_e2e_checkpoints'))
    parser.add_argument('--prepare', action='store_true',
                        help='install the carried ROS runtime (.carry/ros312) into --venv '
                             'and run under it')
    parser.add_argument('--venv', type=Path, default=Path('/tmp/da3_ros_venv'))
    parser.add_argument('--domain', type=int, default=57)
    parser.add_argument('--pack', action='store_true',
                        help="pack each run's folder into <out>/<run>.tgz + <run>.json")
    parser.add_argument('--slam', nargs='*', default=[], metavar='MODEL',
                        help='also run the SLAM node on the rig with these models')
    parser.add_argument('--slam-segment', default='10:30', help='RATE_HZ:SECONDS')
    parser.add_argument('--slam-chunk', type=int, nargs=2, default=[12, 4],
                        metavar=('SIZE', 'OVERLAP'), help='chunk.size and chunk.overlap')
    args = parser.parse_args()
    if args.prepare:
        prepare(args.venv)
    args.compile = args.device.startswith('cuda') if args.compile is None else args.compile
    args.data = args.data or default_data()
    args.out.mkdir(parents=True, exist_ok=True)
    reports = []
    for model in args.models:
        checkpoint = write_checkpoint(model, args.checkpoints / model)
        for transport in args.inputs:
            report = run_one(args, model, transport, checkpoint, args.domain)
            pack(args, f'{model}_{transport}')
            reports.append({k: v for k, v in report.items() if k != 'node_log_tail'})
            for row in summary_rows(report):
                print(row, flush=True)
            print(f"  first set {report.get('first_set_ms')} ms, node exit "
                  f"{report.get('node_exit')}, device path check "
                  f"{report.get('device_path_check')}", flush=True)
    for model in args.slam:
        checkpoint = write_checkpoint(model, args.checkpoints / model)
        report = run_one(args, model, 'raw', checkpoint, args.domain, slam=True)
        pack(args, f'slam_{model}_raw')
        reports.append({k: v for k, v in report.items() if k != 'node_log_tail'})
        print(f"slam {model}: {report.get('chunks')} chunks, chunk ms "
              f"{report.get('chunk_ms')}, tf {report.get('tf')}, diagnostics "
              f"{report.get('diagnostics')}, cpu {report.get('cpu_percent')} %, node exit "
              f"{report.get('node_exit')}", flush=True)
    (args.out / 'e2e_summary.json').write_text(json.dumps(reports, indent=1))
    return 0 if all(r.get('publisher_exit') == 0 for r in reports) else 1


if __name__ == '__main__':
    sys.exit(main())
