"""The storage role's code bundle: byte-stable for the same sources, and runnable by python3."""

import base64
import importlib.util
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "roles/storage/files/make_code_bundle.py"


def load_bundler():
    spec = importlib.util.spec_from_file_location("make_code_bundle", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sources(tmp_path, helper_text="VALUE = 42\n"):
    utils = tmp_path / "module_utils"
    utils.mkdir(exist_ok=True)
    (utils / "_helper.py").write_text(helper_text)
    main = tmp_path / "main.py"
    main.write_text("from ansible_collections.dockyard.fleet.plugins.module_utils._helper import VALUE\nprint(VALUE)\n")
    return main, utils


def test_same_sources_give_the_same_bytes(tmp_path):
    bundler = load_bundler()
    main, utils = sources(tmp_path)
    first, second = tmp_path / "a.pyz", tmp_path / "b.pyz"
    assert bundler.main([str(first), str(main), str(utils), "_helper.py"]) == 0
    (utils / "_helper.py").touch()  # a newer mtime must not change the bundle
    assert bundler.main([str(second), str(main), str(utils), "_helper.py"]) == 0
    assert first.read_bytes() == second.read_bytes()


def test_changed_source_changes_the_bundle(tmp_path):
    bundler = load_bundler()
    main, utils = sources(tmp_path)
    before, after = tmp_path / "a.pyz", tmp_path / "b.pyz"
    bundler.main([str(before), str(main), str(utils), "_helper.py"])
    sources(tmp_path, helper_text="VALUE = 43\n")
    bundler.main([str(after), str(main), str(utils), "_helper.py"])
    assert before.read_bytes() != after.read_bytes()


def test_dash_prints_the_same_bundle_in_base64(tmp_path):
    """The role reads the bundle from a pipe lookup (OUT "-"): the same bytes as the file, in base64."""
    main, utils = sources(tmp_path)
    bundle = tmp_path / "code.pyz"
    load_bundler().main([str(bundle), str(main), str(utils), "_helper.py"])
    command = [sys.executable, str(SCRIPT), "-", str(main), str(utils), "_helper.py"]
    printed = subprocess.run(command, capture_output=True, text=True, check=True)
    assert base64.b64decode(printed.stdout.strip()) == bundle.read_bytes()
    assert list(tmp_path.glob(".bundle-*")) == []


def test_bundle_runs_and_imports_the_packaged_code(tmp_path):
    bundler = load_bundler()
    main, utils = sources(tmp_path)
    bundle = tmp_path / "code.pyz"
    bundler.main([str(bundle), str(main), str(utils), "_helper.py"])
    names = zipfile.ZipFile(bundle).namelist()
    assert names == sorted(names)
    assert "ansible_collections/dockyard/fleet/plugins/module_utils/__init__.py" in names
    out = subprocess.run([sys.executable, str(bundle)], capture_output=True, text=True, check=True)
    assert out.stdout == "42\n"


def test_missing_source_leaves_no_partial_bundle(tmp_path):
    bundler = load_bundler()
    main, utils = sources(tmp_path)
    bundle = tmp_path / "code.pyz"
    try:
        bundler.main([str(bundle), str(main), str(utils), "_missing.py"])
    except FileNotFoundError:
        pass
    else:
        raise AssertionError("a missing source must fail")
    assert not bundle.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".bundle-")] == []


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
