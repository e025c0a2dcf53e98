"""Offline stand-in for ansible-test's pip bootstrap script (get-pip-<version>.py).

ansible-test bootstraps pip into every virtual environment it creates by running
``~/.ansible/test/cache/get_pip_<version>.py`` (downloaded on first use from
ci-files.testing.ansible.com, which is not reachable from every machine).
scripts/sanity.sh copies this file to that cache path, next to a pip wheel it
fetched with ``pip download pip==<version> --no-deps``.

ansible-test runs it (through its quiet_pip.py wrapper) as
``python get_pip_X_Y.py --disable-pip-version-check pip==X.Y --no-setuptools --no-wheel``
inside the new, pip-less venv. Like the real get-pip.py, we import pip straight
from the wheel and let it install itself (and the other requested packages).
"""

from __future__ import annotations

import glob
import os
import sys

# Options understood by get-pip.py but not by ``pip install``.
GET_PIP_ONLY_OPTIONS = ("--no-setuptools", "--no-wheel")


def find_wheel(cache_dir: str, args: list[str]) -> str:
    """Return the pip wheel in cache_dir matching the pinned pip version in args, if any."""
    version = None
    for arg in args:
        if arg.startswith("pip=="):
            version = arg[len("pip==") :]

    pattern = "pip-%s-*.whl" % (version or "*")
    wheels = sorted(glob.glob(os.path.join(cache_dir, pattern)))
    if not wheels:
        sys.stderr.write(
            "get_pip stand-in: no wheel matching %s in %s; run scripts/sanity.sh to fetch it\n" % (pattern, cache_dir)
        )
        sys.exit(1)
    return wheels[-1]


def main() -> None:
    cache_dir = os.path.dirname(os.path.abspath(__file__))
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]

    wheel = find_wheel(cache_dir, args)
    sys.path.insert(0, wheel)

    options = ["install", "--upgrade", "--force-reinstall", "--find-links", cache_dir]
    requirements = [arg for arg in args if not arg.startswith("-")]
    if requirements == ["pip==%s" % os.path.basename(wheel).split("-")[1]]:
        # Only pip itself is wanted and its wheel is right here: stay offline.
        options.append("--no-index")

    from pip._internal.cli.main import main as pip_main  # pylint: disable=import-outside-toplevel

    sys.exit(pip_main(options + args))


if __name__ == "__main__":
    main()
