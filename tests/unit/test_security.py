from backend.accounts.security import Passwords, hash_token, new_token
from backend.config import Settings


def test_passwords_hash_and_verify():
    pw = Passwords(Settings(argon2_time_cost=1, argon2_memory_kib=8 * 1024, argon2_parallelism=1))
    h = pw.hash("correct horse battery")
    assert h.startswith("$argon2id$")
    assert pw.verify(h, "correct horse battery")
    assert not pw.verify(h, "wrong password!!")
    assert not pw.verify(None, "anything at all")  # unknown user: still runs a hash, still False
    assert not pw.verify("garbage", "anything at all")


def test_tokens_are_random_and_stored_hashed():
    token, stored = new_token()
    other, _ = new_token()
    assert token != other and len(token) >= 43
    assert stored == hash_token(token) and token not in stored
