import pytest
from argon2 import PasswordHasher

from rcd_store.names import clean_display_name, name_key
from rcd_store.passwords import (
    HashParameters,
    PasswordPolicyError,
    PasswordService,
    check_policy,
    common_passwords,
)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("DUPONT", "Dupont"),
        ("Élodie", "ELODIE"),
        ("Jean-Pierre", "jean pierre"),
        ("  Le  Goff ", "LEGOFF"),
        ("Lefèvre", "LEFEVRE"),
        ("Œdipe", "oedipe"),
    ],
)
def test_name_keys_match(a: str, b: str) -> None:
    assert name_key(a) == name_key(b)


def test_name_keys_differ() -> None:
    assert name_key("Dupont") != name_key("Dupond")


def test_clean_display_name() -> None:
    assert clean_display_name("  Jean   Pierre ") == "Jean Pierre"
    with pytest.raises(ValueError):
        clean_display_name("   ")
    with pytest.raises(ValueError):
        clean_display_name("x" * 101)


def test_common_list_is_large_and_used() -> None:
    assert len(common_passwords()) >= 10_000
    with pytest.raises(PasswordPolicyError, match="courant"):
        check_policy("1234567890qwerty")  # in the list and long enough
    with pytest.raises(PasswordPolicyError, match="courant"):
        check_policy("MotDePasse123")  # case does not help


@pytest.mark.parametrize(
    ("password", "reason"),
    [("court", "court"), ("x" * 129, "long"), ("aaaaaaaaaaaaaa", "courant")],
)
def test_policy_refuses(password: str, reason: str) -> None:
    with pytest.raises(PasswordPolicyError, match=reason):
        check_policy(password)


def test_policy_refuses_own_name_and_accepts_passphrase() -> None:
    with pytest.raises(PasswordPolicyError, match="nom"):
        check_policy("Dupontdupont", context=("dupontdupont",))
    check_policy("cheval agrafe pile correcte")  # no composition rules


def test_hash_is_argon2id_with_owasp_floor() -> None:
    service = PasswordService()
    hashed = service.hash("cheval agrafe pile correcte")
    assert hashed.startswith("$argon2id$")
    assert "m=19456,t=2" in hashed
    assert service.verify(hashed, "cheval agrafe pile correcte")
    assert not service.verify(hashed, "cheval agrafe pile correctE")
    assert not service.verify("not-a-hash", "x")
    with pytest.raises(ValueError):
        HashParameters(memory_kib=1024)


def test_rehash_when_parameters_change() -> None:
    old = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash("cheval agrafe pile")
    stronger = PasswordService(HashParameters(time_cost=3))
    assert stronger.verify(old, "cheval agrafe pile")
    assert stronger.needs_rehash(old)
    assert not stronger.needs_rehash(stronger.hash("cheval agrafe pile"))
