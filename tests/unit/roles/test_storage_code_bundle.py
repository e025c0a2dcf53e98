"""The storage role's code bundle: byte-stable for the same sources, and runnable by python3."""

import base64
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "roles/storage/files/make_code_bundle.py"


def sources(tmp_path, helper_text="VALUE = 42\n"):
    utils = tmp_path / "module_utils"
    utils.mkdir(exist_ok=True)
    (utils / "_helper.py").write_text(helper_text)
    main = tmp_path / "main.py"
    main.write_text("from ansible_collections.dockyard.fleet.plugins.module_utils._helper import VALUE\nprint(VALUE)\n")
    return main, utils


def bundle(main, utils, *files):
    """What the role's pipe lookup runs: the bundle's bytes from the base64 the script prints."""
    command = [sys.executable, str(SCRIPT), str(main), str(utils), *files]
    printed = subprocess.run(command, capture_output=True, text=True, check=True)
    return base64.b64decode(printed.stdout.strip(), validate=True)


def test_same_sources_give_the_same_bytes(tmp_path):
    main, utils = sources(tmp_path)
    first = bundle(main, utils, "_helper.py")
    (utils / "_helper.py").touch()  # a newer mtime must not change the bundle
    assert bundle(main, utils, "_helper.py") == first


def test_changed_source_changes_the_bundle(tmp_path):
    main, utils = sources(tmp_path)
    before = bundle(main, utils, "_helper.py")
    sources(tmp_path, helper_text="VALUE = 43\n")
    assert bundle(main, utils, "_helper.py") != before


def test_bundle_runs_and_imports_the_packaged_code(tmp_path):
    main, utils = sources(tmp_path)
    path = tmp_path / "code.pyz"
    path.write_bytes(bundle(main, utils, "_helper.py"))
    names = zipfile.ZipFile(path).namelist()
    assert names == sorted(names)
    assert "ansible_collections/dockyard/fleet/plugins/module_utils/__init__.py" in names
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, check=True)
    assert out.stdout == "42\n"


def test_missing_source_fails_and_prints_no_bundle(tmp_path):
    """The pipe lookup fails on a non-zero exit: a half bundle must never reach the hosts."""
    main, utils = sources(tmp_path)
    command = [sys.executable, str(SCRIPT), str(main), str(utils), "_missing.py"]
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    assert run.returncode != 0
    assert "_missing.py" in run.stderr
    assert run.stdout == ""


def test_too_few_arguments_print_the_usage(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, check=False)
    assert run.returncode == 2
    assert "MAIN.py MODULE_UTILS_DIR FILE..." in run.stderr
    assert run.stdout == ""


def collection_imports(path):
    """module_utils files a source imports from the collection (the bundle must hold each)."""
    text = path.read_text()
    prefix = r"from ansible_collections\.dockyard\.fleet\.plugins\.module_utils"
    found = set(re.findall(prefix + r"\.(\w+) import", text))
    # `from ...module_utils import _a as a, _b`: the names imported are the files
    for names in re.findall(prefix + r" import ([\w ,]+)", text):
        found |= {name.split()[0] for name in names.split(",") if name.strip()}
    return {name + ".py" for name in found}


def test_the_role_bundles_everything_the_timer_code_imports():
    listed = set(yaml.safe_load((REPO / "roles/storage/vars/main.yml").read_text())["storage_code_files"])
    utils = REPO / "plugins/module_utils"
    wanted, todo = set(), collection_imports(REPO / "roles/storage/files/dockyard_volume_backup.py")
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo |= collection_imports(utils / name)
    assert sorted(wanted - listed) == []


def test_the_bundled_code_needs_no_ansible_on_the_host():
    """The timers run the bundle with the host's python3 alone: no bundled file may import ansible itself."""
    listed = yaml.safe_load((REPO / "roles/storage/vars/main.yml").read_text())["storage_code_files"]
    importing = [
        name
        for name in listed
        if re.search(r"^\s*(from|import) ansible\.", (REPO / "plugins/module_utils" / name).read_text(), re.MULTILINE)
    ]
    assert importing == []
