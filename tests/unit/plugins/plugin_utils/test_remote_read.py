"""Remote reads (read_command, host_files' check): a POSIX shell must hand the command exactly the arguments given."""

import subprocess

import pytest

from ansible_collections.dockyard.fleet.plugins.plugin_utils._remote_read import shell_words

ARGUMENT_VECTORS = [
    ["systemctl", "show", "--property=Id,ActiveState", "rsyslog.service"],
    ["printf", "%s\n", "a b", "$HOME", "it's", "; true", "*", '"q"', "back\\slash", "", "tab\there", "new\nline"],
    ["dpkg-query", "--showformat=${Package} ${db:Status-Status}\n", "rsyslog"],
]


@pytest.mark.parametrize("argv", ARGUMENT_VECTORS)
def test_a_shell_passes_every_argument_unchanged(argv):
    # `printf '%s\0'` after the command line's own words shows what sh made of them
    line = "printf '%s\\0' " + shell_words(argv)
    out = subprocess.run(["/bin/sh", "-c", line], capture_output=True, check=True).stdout
    assert out.split(b"\0")[:-1] == [argument.encode() for argument in argv]
