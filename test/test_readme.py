"""README.md and docs/ stay true to the code: the parameter tables equal the nodes'
declarations, and every `da3-ros` command they show is accepted by the CLI's parser."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from da3_ros.cli import make_parser

ROOT = Path(__file__).resolve().parents[1]
# the front page and the pages it links: the documentation a user reads
README = '\n'.join(p.read_text() for p in [ROOT / 'README.md',
                                             *sorted((ROOT / 'docs').glob('*.md'))])


def test_parameter_tables_are_generated_from_the_declarations():
    result = subprocess.run([sys.executable, 'scripts/param_tables.py', '--check'], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for node in ('depth_node', 'slam_node'):
        assert f'<!-- BEGIN params: {node} -->\n| parameter |' in README


def readme_commands() -> list[str]:
    """Every da3-ros command line in the README's bash blocks (continuations joined)."""
    blocks = re.findall(r'```bash\n(.*?)```', README, re.S)
    lines = '\n'.join(blocks).replace('\\\n', ' ').splitlines()
    return [line.strip() for line in lines
            if re.match(r'\s*(\.venv/bin/)?da3-ros ', line)]


def test_readme_has_the_quick_start_and_slam_commands():
    commands = readme_commands()
    assert any('process' in c and '--slam' in c and 'rosbag2_samples' in c for c in commands)
    assert any(c.startswith('da3-ros build-engine') for c in commands)


@pytest.mark.parametrize('command', readme_commands())
def test_readme_commands_parse(command):
    argv = shlex.split(command.split('#')[0])[1:]
    args = make_parser().parse_args(argv)            # exits (fails the test) on a bad option
    assert args.command == argv[0]
