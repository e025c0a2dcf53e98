# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# Reads run by action plugins over the connection itself, as ansible.builtin.raw does: no Python
# module goes to the host. A module run costs the host about 0.2 s of CPU (Python compiling
# ansible-core's module code from the AnsiballZ zip, which it cannot cache); a command costs a shell.

from __future__ import annotations

import shlex


def shell_words(argv):
    """The argument vector as one command line for a POSIX shell: every argument quoted, nothing interpreted."""
    return " ".join(shlex.quote(argument) for argument in argv)


def run_on_host(action, command):
    """(rc, stdout, stderr) of a shell command line run on the task's host, with become when the task has it.

    No terminal: with one (ssh's default for commands without input) stderr is mixed into stdout and
    systemctl and the like may start a pager.
    """
    connection = action._connection
    has_tty_option = connection.has_option("use_tty")
    if has_tty_option:
        use_tty = connection.get_option("use_tty")
        connection.set_option("use_tty", False)
    try:
        run = action._low_level_execute_command(command, sudoable=True)
    finally:
        if has_tty_option:
            connection.set_option("use_tty", use_tty)  # a module run after this one (host_files) runs as configured
    return run["rc"], run.get("stdout", ""), run.get("stderr", "")
