# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# Passphrase encryption for volume archives, with age and no terminal. `age -p` reads a
# passphrase only from a terminal, which a module does not have. Instead an age identity
# (an X25519 secret key) is derived from the passphrase with scrypt and a random salt kept
# in the manifest; the archive is encrypted to that identity's recipient and decrypted with
# the identity. Same passphrase + same salt = same key, so restoring needs only the
# passphrase. The salt is not secret; the passphrase and the derived key are never written
# anywhere but a 0600 temporary identity file that lives as long as the task.

from __future__ import annotations

import hashlib
import os

# scrypt cost: 2^15 x 8 x 1 = 32 MiB and about 0.1 s per derivation (age's own -p uses 2^18).
KDF = {"name": "scrypt", "n": 1 << 15, "r": 8, "p": 1}
SALT_BYTES = 16
_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_HRP = "age-secret-key-"


def new_kdf():
    """KDF parameters with a fresh random salt, as recorded in a manifest."""
    return dict(KDF, salt=os.urandom(SALT_BYTES).hex())


def _polymod(values):
    generator = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            check ^= generator[i] if (top >> i) & 1 else 0
    return check


def _bech32(hrp, data):
    """Bech32 (BIP 173, the variant age uses) of bytes under a human-readable part."""
    bits, acc, words = 0, 0, []
    for byte in data:
        acc = (acc << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            words.append((acc >> bits) & 31)
    if bits:
        words.append((acc << (5 - bits)) & 31)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    mod = _polymod([*expanded, *words, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words + checksum)


def derive_identity(passphrase, kdf):
    """The age secret key (AGE-SECRET-KEY-1...) of a passphrase under recorded KDF parameters."""
    if kdf.get("name") != "scrypt":
        raise ValueError("unknown key derivation %r" % kdf.get("name"))
    key = hashlib.scrypt(
        passphrase.encode("utf-8"),
        salt=bytes.fromhex(kdf["salt"]),
        n=kdf["n"],
        r=kdf["r"],
        p=kdf["p"],
        maxmem=256 << 20,
        dklen=32,
    )
    return _bech32(_HRP, key).upper()
