"""Make the work tree importable as ansible_collections.dockyard.fleet for unit tests."""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TREE = REPO / "tests" / "output" / "unit-path"
LINK = TREE / "ansible_collections" / "dockyard" / "fleet"

if not LINK.exists():
    LINK.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(REPO, LINK)
sys.path.insert(0, str(TREE))
sys.path.insert(0, str(REPO / "tests" / "fleet"))
