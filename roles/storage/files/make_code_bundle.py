# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run on the controller by the storage role: bundle the backup command and the collection's code it
imports into one zip application (python3 runs it directly: the command is its __main__.py).

  make_code_bundle.py MAIN.py MODULE_UTILS_DIR FILE...    (prints the zip in base64)

The zip is byte-for-byte the same for the same sources (fixed timestamps, sorted entries), so the
role's copy of it to each host is one transfer when the code changed and a no-op otherwise, instead
of one round trip per file. Nothing is written on the controller: the role reads the base64 from a
pipe lookup, so building and reading the bundle costs no module run.
"""

import base64
import io
import os
import sys
import zipfile

PACKAGE = "ansible_collections/dockyard/fleet/plugins/module_utils"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def entries(main_path, module_utils_dir, files):
    """(name in the zip, source bytes) of the bundle, sorted."""
    found = {"__main__.py": read(main_path)}
    parts = PACKAGE.split("/")
    for depth in range(1, len(parts) + 1):
        found["/".join(parts[:depth]) + "/__init__.py"] = b""
    for name in files:
        found["%s/%s" % (PACKAGE, name)] = read(os.path.join(module_utils_dir, name))
    return sorted(found.items())


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def zip_bytes(items):
    """The bundle's bytes: fixed timestamps and modes, entries in the order given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in items:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, data)
    return buffer.getvalue()


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    main_path, module_utils_dir = argv[0], argv[1]
    items = entries(main_path, module_utils_dir, argv[2:])
    sys.stdout.write(base64.b64encode(zip_bytes(items)).decode("ascii") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
