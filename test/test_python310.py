"""The package stays importable on Python 3.10 (JetPack 6 / ROS 2 Humble), though CI runs 3.11:
no syntax newer than 3.10 (ast with feature_version) and no standard-library name that 3.10
lacks. A syntax/feature check, not a 3.10 run."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / 'da3_ros').rglob('*.py')) + sorted((ROOT / 'scripts').glob('*.py'))

# module -> names added after 3.10 (3.11 and 3.12)
NEW = {
    'typing': {'Self', 'LiteralString', 'Never', 'assert_never', 'assert_type',
               'reveal_type', 'Required', 'NotRequired', 'Unpack', 'TypeVarTuple',
               'dataclass_transform', 'override', 'TypeAliasType'},
    'enum': {'StrEnum', 'ReprEnum', 'verify', 'EnumCheck', 'FlagBoundary'},
    'datetime': {'UTC'},
    'hashlib': {'file_digest'},
    'asyncio': {'TaskGroup', 'timeout', 'Runner'},
    'itertools': {'batched'},
    'contextlib': {'chdir'},
}
NEW_MODULES = {'tomllib', 'wsgiref.types'}
NEW_BUILTINS = {'ExceptionGroup', 'BaseExceptionGroup'}


def problems(path: Path) -> list[str]:
    text = path.read_text()
    try:
        tree = ast.parse(text, str(path), feature_version=(3, 10))
    except SyntaxError as err:
        return [f'line {err.lineno}: not Python 3.10 syntax: {err.msg}']
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in NEW_MODULES:
                    found.append(f'line {node.lineno}: import {a.name} (3.11+)')
                aliases[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module in NEW_MODULES:
                found.append(f'line {node.lineno}: from {node.module} (3.11+)')
            for a in node.names:
                if a.name in NEW.get(node.module, ()):
                    found.append(f'line {node.lineno}: {node.module}.{a.name} (3.11+)')
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module = aliases.get(node.value.id)
            if module and node.attr in NEW.get(module, ()):
                found.append(f'line {node.lineno}: {module}.{node.attr} (3.11+)')
        elif isinstance(node, ast.Name) and node.id in NEW_BUILTINS:
            found.append(f'line {node.lineno}: {node.id} (3.11+)')
    return found


@pytest.mark.parametrize('path', SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_source_is_python_310(path):
    assert problems(path) == []


def test_the_check_catches_newer_code(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('import tomllib\nfrom typing import Self\nimport enum\n'
                   'class C(enum.StrEnum):\n    pass\n'
                   'try:\n    pass\nexcept* ValueError:\n    pass\n')
    assert problems(bad) and 'not Python 3.10 syntax' in problems(bad)[0]
    bad.write_text('import tomllib\nfrom typing import Self\nimport enum\nx = enum.StrEnum\n')
    assert len(problems(bad)) == 3


def test_setup_declares_310():
    assert "python_requires='>=3.10'" in (ROOT / 'setup.py').read_text()
