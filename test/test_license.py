"""The LICENSE file is the licence package.xml and setup.py declare."""
import re
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_license_file_matches_package_xml_and_setup_py():
    declared = ET.parse(ROOT / 'package.xml').getroot().findtext('license')
    assert declared == 'Apache-2.0'
    assert re.search(r"license='Apache-2\.0'", (ROOT / 'setup.py').read_text())
    text = (ROOT / 'LICENSE').read_text()
    assert 'Apache License' in text and 'Version 2.0, January 2004' in text
    assert 'TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION' in text
