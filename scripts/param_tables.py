"""The parameter tables of docs/nodes.md, generated from the nodes' declaration tables.

    .venv/bin/python scripts/param_tables.py           # print the tables
    .venv/bin/python scripts/param_tables.py --write   # replace them in docs/nodes.md
    .venv/bin/python scripts/param_tables.py --check   # exit 1 if docs/nodes.md differs

Sources: da3_ros/ros/depth/params.py (PARAMS) and da3_ros/ros/slam/params.py (SLAM_PARAMS; the
test-only SIMULATION_PARAMS are not listed). In
docs/nodes.md each table sits between `<!-- BEGIN params: NODE -->` and
`<!-- END params: NODE -->`.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / 'docs' / 'nodes.md'


def _cell(text: str) -> str:
    return text.replace('|', '\\|').replace('<', '&lt;').replace('>', '&gt;')


def _default(param, required) -> str:
    value = param.default
    if value is required:
        return '*required*'
    if isinstance(value, bool):
        return f'`{str(value).lower()}`'
    if isinstance(value, list):
        return f"`[{', '.join(value)}]`"
    return "`''`" if value == '' else f'`{value}`'


def _allowed(param) -> str:
    if param.choices:
        return ', '.join(param.choices)
    if param.range is not None:
        low, high = param.range
        return f'{low:g} … {high:g}'
    return ''


def table(params, required) -> str:
    """Markdown table: parameter, type, default, allowed values, when a change applies (live:
    `ros2 param set` on the running node; start-up: read-only once running), meaning."""
    rows = ['| parameter | type | default | allowed | applies | meaning |',
            '|---|---|---|---|---|---|']
    rows += [f'| `{p.name}` | {p.kind} | {_default(p, required)} | {_cell(_allowed(p))} | '
             f"{'live' if p.live else 'start-up'} | {_cell(p.description)} |" for p in params]
    return '\n'.join(rows)


def tables() -> dict[str, str]:
    """Node name -> its parameter table."""
    sys.path.insert(0, str(ROOT))
    from da3_ros.ros.depth.params import PARAMS
    from da3_ros.ros.params import REQUIRED
    from da3_ros.ros.slam.params import SLAM_PARAMS

    return {'depth_node': table(PARAMS, REQUIRED), 'slam_node': table(SLAM_PARAMS, REQUIRED)}


def with_tables(text: str, generated: dict[str, str]) -> str:
    """README text with each marked block replaced by its generated table."""
    for node, body in generated.items():
        begin, end = f'<!-- BEGIN params: {node} -->\n', f'<!-- END params: {node} -->'
        match = re.search(re.escape(begin) + '.*?' + re.escape(end), text, re.S)
        if match is None:
            raise SystemExit(f'docs/nodes.md has no block for {node}')
        text = text[:match.start()] + begin + body + '\n' + end + text[match.end():]
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--write', action='store_true', help='update docs/nodes.md in place')
    parser.add_argument('--check', action='store_true', help='exit 1 if docs/nodes.md is stale')
    args = parser.parse_args()
    generated = tables()
    if not (args.write or args.check):
        print('\n\n'.join(f'{node}:\n{body}' for node, body in generated.items()))
        return 0
    text = README.read_text()
    new = with_tables(text, generated)
    if args.write:
        README.write_text(new)
        return 0
    if new != text:
        print('docs/nodes.md parameter tables are stale: run scripts/param_tables.py --write',
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
