# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The attributes every module of the collection declares; modules set `support`.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
  diff_mode:
    description:
      - Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
"""

    # Modules that talk to the Docker engine belong to this action group.
    ACTIONGROUP_DOCKER = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/dockyard.fleet.docker) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - dockyard.fleet.docker
"""

    # Read-only modules: full check mode, no diff, idempotent.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: This module never changes anything.
  diff_mode:
    support: none
  idempotent:
    support: full
"""
