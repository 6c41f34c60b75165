"""docs/architecture.md matches the tree, and no file refers to a document that is not in the
repository (comments once cited design notes that users never saw)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / 'docs' / 'architecture.md'
# documents that were cited but never shipped; a reference to one must resolve like any other
MISSING_ONCE = ('ARCHITECTURE.md', 'STYLE.md', 'da3-model.md', 'slam.md', 'ros-wheels.md')


def layout_folders() -> list[str]:
    block = ARCHITECTURE.read_text().split('<!-- BEGIN layout -->')[1]
    block = block.split('<!-- END layout -->')[0]
    return [line.split()[0] for line in block.splitlines()
            if line.strip() and not line.startswith('```')]


def test_layout_lists_existing_folders_one_per_line():
    folders = layout_folders()
    assert len(folders) == len(set(folders)) > 10
    for folder in folders:
        assert folder.endswith('/'), folder
        assert (ROOT / folder).is_dir(), f'docs/architecture.md lists {folder}, not in the tree'


def test_layout_lists_every_package_folder():
    listed = set(layout_folders())
    packages = {f'{p.parent.relative_to(ROOT).as_posix()}/'
                for p in (ROOT / 'da3_ros').rglob('__init__.py')
                if '__pycache__' not in p.parts and 'msg' not in p.relative_to(ROOT).parts}
    assert packages - listed == set(), 'package folders missing from docs/architecture.md'


def test_test_tree_mirrors_the_package():
    """Each package folder da3_ros/<p>/ has its tests in test/<p>/, and the only conftest.py
    is test/conftest.py."""
    for init in (ROOT / 'da3_ros').rglob('__init__.py'):
        folder = init.parent.relative_to(ROOT / 'da3_ros')
        if folder == Path('.') or 'msg' in folder.parts or '__pycache__' in folder.parts:
            continue
        name = folder.as_posix()
        assert list((ROOT / 'test' / folder).glob('test_*.py')), f'no test/{name}/test_*.py'
    assert sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / 'test').rglob('conftest.py')
                  if '__pycache__' not in p.parts) == ['test/conftest.py']


def repository_files() -> list[Path]:
    """The files git tracks and the untracked ones it does not ignore."""
    out = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard'],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / name for name in out.splitlines() if (ROOT / name).is_file()]


def test_every_referenced_document_exists():
    """Each `name.md` a file mentions resolves beside that file, at the root or in docs/."""
    missing = []
    for path in repository_files():
        if path.suffix not in ('.py', '.md', '.txt', '.sh', '.yaml', '.xml', '.cfg', '.toml',
                               '.msg', '.rviz', '') or path == Path(__file__):
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        text = re.sub(r'https?://\S+', '', text)      # another project's documents
        for ref in set(re.findall(r'[\w./-]*\w\.md\b', text)):
            ref = ref.split('/docs/')[-1] if '/docs/' in ref else ref
            candidates = (path.parent / ref, ROOT / ref, ROOT / 'docs' / ref)
            if not any(c.is_file() for c in candidates):
                missing.append(f'{path.relative_to(ROOT)}: {ref}')
    assert not missing, missing


def test_the_check_sees_a_missing_document(tmp_path):
    ref = re.findall(r'[\w./-]*\w\.md\b', 'see STYLE.md and docs/da3-model.md.')
    assert ref == ['STYLE.md', 'docs/da3-model.md']
    assert not any((ROOT / name).is_file() or (ROOT / 'docs' / name).is_file()
                   for name in MISSING_ONCE if name != 'slam.md')
