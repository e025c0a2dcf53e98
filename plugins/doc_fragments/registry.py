# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Credentials for modules that talk to a registry's HTTP API.
    DOCUMENTATION = r"""
options:
  registry_username:
    description:
      - User for the registry API (basic auth, or to obtain a bearer token).
    type: str
  registry_password:
    description:
      - Password of O(registry_username). Never logged.
    type: str
notes:
  - TLS trust of the registry is Docker's, C(/etc/docker/certs.d/<host:port>/ca.crt) when present, else the
    system's certificate store.
"""
