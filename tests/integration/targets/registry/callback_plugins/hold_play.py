# Test-only callback: hold a playbook at the start of a named play until a command succeeds.
#
# The registry target runs playbooks/registry_gc.yml as an operator does, with a push loop in
# the background, and checks that pushes made while every node is read-only are refused
# cleanly. How long the nodes stay read-only depends on how fast the collection runs, so a
# push loop could miss the window altogether (a CI run of 12-06 did: 9 pushes, none in it).
# This callback holds the run when the collection's play starts (every node read-only by
# then) until the push loop has logged a refusal, so the window is always exercised. The
# playbook itself is not changed.
#
#   HOLD_PLAY     name of the play to hold at its start
#   HOLD_UNTIL    shell command polled every second until it exits 0
#   HOLD_TIMEOUT  seconds to wait at most (default 60); then the run goes on, and the test's
#                 own assertion reports the missing refusal
from __future__ import annotations

import os
import subprocess
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: hold_play
    type: aggregate
    short_description: hold a playbook at the start of a play until a command succeeds (tests only)
    description:
        - At the start of the play named by C(HOLD_PLAY), runs C(HOLD_UNTIL) every second until it exits 0,
          at most C(HOLD_TIMEOUT) seconds.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "hold_play"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_play_start(self, play):
        if play.get_name().strip() != os.environ.get("HOLD_PLAY", "").strip():
            return
        command = os.environ["HOLD_UNTIL"]
        timeout = float(os.environ.get("HOLD_TIMEOUT", "60"))
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if subprocess.run(command, shell=True, check=False, capture_output=True).returncode == 0:
                self._display.display("hold_play: %r held %.1f s" % (play.get_name(), time.monotonic() - started))
                return
            time.sleep(1)
        self._display.warning("hold_play: %r not released by HOLD_UNTIL after %.0f s" % (play.get_name(), timeout))
