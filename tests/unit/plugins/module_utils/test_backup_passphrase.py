import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils import _backup_passphrase as passphrase

# A key age-keygen made, and its raw 32 bytes: our bech32 must write it the way age does.
AGE_KEY = "AGE-SECRET-KEY-14VR2RKJP74CKKZKAJPVU33Z03XTLDZ0MEGFNKML54KRW2PWUL0GS5SHT8L"
AGE_KEY_BYTES = "ab06a1da41f5716b0add9059c8c44f8997f689fbca133b6ff4ad86e505dcfbd1"
# The key of "correct horse" with an all-zero salt (age-keygen -y accepts it: age1qrhesu62pc3...).
FIXED = "AGE-SECRET-KEY-1V0P33G4F6L39TPJ6UQ8TLTSVQNMUZGX5PF24695SDWKQRUAD868QKG7TGT"


def test_bech32_writes_an_age_key_as_age_does():
    assert passphrase._bech32("age-secret-key-", bytes.fromhex(AGE_KEY_BYTES)).upper() == AGE_KEY


def test_same_passphrase_and_salt_give_the_same_key():
    kdf = dict(passphrase.KDF, salt="00" * 16)
    assert passphrase.derive_identity("correct horse", kdf) == FIXED
    assert passphrase.derive_identity("correct horse", dict(kdf)) == FIXED


def test_another_salt_or_passphrase_gives_another_key():
    kdf = dict(passphrase.KDF, salt="00" * 16)
    assert passphrase.derive_identity("correct horsf", kdf) != FIXED
    assert passphrase.derive_identity("correct horse", dict(kdf, salt="01" * 16)) != FIXED


def test_new_kdf_has_a_fresh_salt_each_time():
    first, second = passphrase.new_kdf(), passphrase.new_kdf()
    assert first["salt"] != second["salt"]
    assert len(bytes.fromhex(first["salt"])) == passphrase.SALT_BYTES
    assert {k: v for k, v in first.items() if k != "salt"} == passphrase.KDF


def test_an_unknown_derivation_is_refused():
    with pytest.raises(ValueError, match="argon2"):
        passphrase.derive_identity("x", {"name": "argon2"})
