import dataclasses
import datetime as dt
import os

import pytest

from medarchive.security import chain
from medarchive.security.checkpoints import Checkpoint

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
KEY = os.urandom(32)
KEYS = {"a1": KEY}


def _entry(seq: int, prev: str, algorithm: str, key_id: str) -> chain.ChainEntry:
    return chain.ChainEntry(
        seq=seq,
        at=T0 + dt.timedelta(seconds=seq),
        actor_id=1,
        actor_name="王档案",
        action="record:content:read",
        object_type="record",
        object_id=f"r{seq}",
        result="success",
        source="10.0.0.1",
        details={"file": "病历.pdf"},
        algorithm=algorithm,
        prev_hash=prev,
        key_id=key_id,
    )


def _build(
    n: int,
    *,
    algorithm: str = "sm3",
    keyed_from: int = 1,
    keys: dict[str, bytes] | None = None,
    key_id: str = "a1",
) -> list[chain.ChainEntry]:
    """A chain of n entries: unkeyed before `keyed_from`, sealed with `keys[key_id]` from it on."""
    keys = KEYS if keys is None else keys
    entries, prev = [], chain.GENESIS
    for seq in range(1, n + 1):
        keyed = seq >= keyed_from
        entry = _entry(seq, prev, algorithm, key_id if keyed else "")
        sealed = chain.seal(entry, keys[key_id], keyed_from=keyed_from) if keyed else chain.seal(entry)
        entry = dataclasses.replace(entry, entry_hash=sealed)
        entries.append(entry)
        prev = sealed
    return entries


def _head(entries: list[chain.ChainEntry], keyed_from: int = 1) -> chain.Head:
    return chain.Head(seq=entries[-1].seq, mac=entries[-1].entry_hash, keyed_from=keyed_from)


def _cp(entry: chain.ChainEntry, keyed_from: int = 1) -> Checkpoint:
    return Checkpoint(seq=entry.seq, mac=entry.entry_hash, at=T0, keyed_from=keyed_from, key_id="a1", algorithm="sm3")


@pytest.mark.parametrize("algorithm", ["sm3", "sha256"])
def test_intact_keyed_chain_verifies(algorithm: str) -> None:
    entries = _build(5, algorithm=algorithm)
    report = chain.verify(entries, keys=KEYS, head=_head(entries))
    assert report.ok and report.checked == 5 and report.first_bad_seq is None and report.keyed_from == 1


def test_the_seal_is_an_hmac_of_prev_and_canonical_form() -> None:
    import hmac

    entry = _build(1)[0]
    body = chain.canonical(entry, keyed_from=1)
    assert b'"key_id":"a1"' in body and b'"keyed_from":1' in body
    assert entry.entry_hash == hmac.new(KEY, chain.GENESIS.encode() + body, "sm3").hexdigest()


def test_old_unkeyed_entries_verify_up_to_the_switch_over() -> None:
    entries = _build(6, keyed_from=4)
    assert [e.key_id for e in entries] == ["", "", "", "a1", "a1", "a1"]
    report = chain.verify(entries, keys=KEYS, head=_head(entries, keyed_from=4))
    assert report.ok and report.checked == 6


def test_edited_field_is_found_at_its_entry() -> None:
    entries = _build(5)
    entries[2] = dataclasses.replace(entries[2], actor_name="someone else")
    report = chain.verify(entries, keys=KEYS, head=_head(entries))
    assert not report.ok and report.first_bad_seq == 3 and report.code == "entry_altered"


def test_deleted_entry_is_found() -> None:
    entries = _build(5)
    head = _head(entries)
    del entries[1]
    report = chain.verify(entries, keys=KEYS, head=head)
    assert not report.ok and report.first_bad_seq == 2 and report.code == "entry_missing"


def test_reordered_entries_are_found() -> None:
    entries = _build(5)
    a, b = entries[1], entries[2]
    entries[1] = dataclasses.replace(b, seq=2)
    entries[2] = dataclasses.replace(a, seq=3)
    report = chain.verify(entries, keys=KEYS, head=_head(entries))
    assert not report.ok and report.first_bad_seq == 2


def test_cut_off_tail_is_found_through_the_head() -> None:
    entries = _build(5)
    report = chain.verify(entries[:4], keys=KEYS, head=_head(entries))
    assert not report.ok and report.first_bad_seq == 5 and report.code == "entries_removed"
    assert "removed" in (report.problem or "")


def test_a_head_that_disagrees_with_the_last_entry_is_found() -> None:
    entries = _build(5)
    head = dataclasses.replace(_head(entries), mac="f" * 64)
    report = chain.verify(entries, keys=KEYS, head=head)
    assert not report.ok and report.first_bad_seq == 5 and report.code == "head_mismatch"


def test_a_missing_head_is_tampering() -> None:
    entries = _build(5)
    report = chain.verify(entries, keys=KEYS, head=None)
    assert not report.ok and report.code == "head_missing" and report.first_bad_seq == 6
    assert not chain.verify([], keys=KEYS, head=None).ok


def test_truncate_and_update_head_passes_the_head_but_not_a_checkpoint() -> None:
    entries = _build(8)
    checkpoint = _cp(entries[7])
    cut = entries[:5]
    assert chain.verify(cut, keys=KEYS, head=_head(cut)).ok  # the head alone cannot tell
    report = chain.verify(cut, keys=KEYS, head=_head(cut), checkpoints=[checkpoint])
    assert not report.ok and report.code == "checkpoint_beyond_tail" and report.first_bad_seq == 6


def test_full_rechain_with_the_public_code_and_no_key_fails_at_seq_1() -> None:
    forged = _build(5, keyed_from=6)  # every entry sealed by the unkeyed public rule
    report = chain.verify(forged, keys=KEYS, head=_head(forged, keyed_from=1))
    assert not report.ok and report.first_bad_seq == 1 and report.code == "entry_unkeyed"


def test_full_rechain_with_a_guessed_key_fails_at_seq_1() -> None:
    guessed = _build(5, keys={"a1": os.urandom(32)})  # the real key id, a wrong key
    report = chain.verify(guessed, keys=KEYS, head=_head(guessed))
    assert not report.ok and report.first_bad_seq == 1 and report.code == "entry_altered"
    own = _build(5, keys={"x9": os.urandom(32)}, key_id="x9")  # a key id of the attacker's own
    report = chain.verify(own, keys=KEYS, head=_head(own))
    assert not report.ok and report.first_bad_seq == 1 and report.code == "unknown_key"


def test_moving_the_switch_over_to_pass_rewritten_entries_as_old_ones_fails() -> None:
    honest = _build(6, keyed_from=3)
    # Without the key: entries 3, 4 re-sealed with the public rule, the head's keyed_from moved to 5.
    downgraded = _build(4, keyed_from=5) + honest[4:]
    report = chain.verify(downgraded, keys=KEYS, head=_head(honest, keyed_from=5))
    assert not report.ok and report.first_bad_seq == 5  # entry 5 links to the old #4 and commits to keyed_from 3
    relinked = [*downgraded[:4], dataclasses.replace(honest[4], prev_hash=downgraded[3].entry_hash), honest[5]]
    report = chain.verify(relinked, keys=KEYS, head=_head(honest, keyed_from=5))
    assert not report.ok and report.first_bad_seq == 5 and report.code == "entry_altered"
    # Rewriting every keyed entry too needs the key; with the checkpoint of the honest chain
    # even a fully unkeyed rewrite is found, at the switch-over the checkpoint recorded.
    legacy = _build(6, keyed_from=7)
    cp = _cp(honest[5], keyed_from=3)
    report = chain.verify(legacy, keys=KEYS, head=chain.Head(6, legacy[-1].entry_hash, 7), checkpoints=[cp])
    assert not report.ok and report.first_bad_seq is not None and report.first_bad_seq <= 3


def test_a_switch_over_after_the_head_is_refused() -> None:
    entries = _build(3, keyed_from=9)
    report = chain.verify(entries, keys=KEYS, head=chain.Head(3, entries[-1].entry_hash, keyed_from=9))
    assert not report.ok and report.code == "switch_over_invalid" and report.first_bad_seq == 4


def test_a_keyed_entry_before_the_switch_over_is_altered() -> None:
    entries = _build(4, keyed_from=1)
    report = chain.verify(entries, keys=KEYS, head=_head(entries, keyed_from=3))
    assert not report.ok and report.first_bad_seq == 1


def test_a_rechain_with_the_real_key_is_found_by_a_checkpoint() -> None:
    honest = _build(6)
    checkpoints = [_cp(honest[1]), _cp(honest[4])]
    rewritten = list(honest[:3])
    prev = rewritten[-1].entry_hash
    for seq in range(4, 7):  # the key leaked: entries 4.. rebuilt with different content
        entry = dataclasses.replace(_entry(seq, prev, "sm3", "a1"), actor_name="mallory")
        entry = dataclasses.replace(entry, entry_hash=chain.seal(entry, KEY, keyed_from=1))
        rewritten.append(entry)
        prev = entry.entry_hash
    report = chain.verify(rewritten, keys=KEYS, head=_head(rewritten), checkpoints=checkpoints)
    assert not report.ok and report.code == "checkpoint_mismatch" and report.first_bad_seq == 5
    assert report.finding is not None and report.finding.params["good"] == 2
    assert report.checkpoints_checked == 2


def test_checkpoints_that_agree_are_counted() -> None:
    entries = _build(5)
    report = chain.verify(entries, keys=KEYS, head=_head(entries), checkpoints=[_cp(entries[2]), _cp(entries[4])])
    assert report.ok and report.checkpoints_checked == 2


def test_a_checkpoint_with_another_switch_over_is_found() -> None:
    entries = _build(5)
    report = chain.verify(entries, keys=KEYS, head=_head(entries), checkpoints=[_cp(entries[2], keyed_from=4)])
    assert not report.ok and report.code == "checkpoint_switch_over" and report.first_bad_seq == 1


def test_keys_rotated_mid_chain_verify_with_both() -> None:
    keys = {"a1": os.urandom(32), "a2": os.urandom(32)}
    first = _build(3, keys=keys, key_id="a1")
    prev, entries = first[-1].entry_hash, list(first)
    for seq in (4, 5):
        entry = _entry(seq, prev, "sm3", "a2")
        entry = dataclasses.replace(entry, entry_hash=chain.seal(entry, keys["a2"], keyed_from=1))
        entries.append(entry)
        prev = entry.entry_hash
    assert chain.verify(entries, keys=keys, head=_head(entries)).ok
    report = chain.verify(entries, keys={"a2": keys["a2"]}, head=_head(entries))
    assert report.code == "unknown_key" and report.first_bad_seq == 1


def test_an_incremental_check_starts_from_a_checkpoint() -> None:
    entries = _build(8)
    cp = _cp(entries[4])
    report = chain.verify(entries[4:], keys=KEYS, head=_head(entries), checkpoints=[cp], start=5, start_prev=None)
    assert report.ok and report.checked == 4 and report.checkpoints_checked == 1
    changed = [dataclasses.replace(entries[4], entry_hash="e" * 64), *entries[5:]]
    report = chain.verify(changed, keys=KEYS, head=_head(entries), checkpoints=[cp], start=5, start_prev=None)
    assert not report.ok and report.first_bad_seq == 5


def test_messages_are_catalog_templates_filled_from_the_facts() -> None:
    finding = chain.Finding("entries_removed", 5, {"last": 4, "head": 9})
    assert finding.message() == "The audit trail ends at #4 but the chain head says #9: entries were removed."
    assert finding.message(lambda text: "审计日志止于 #%(last)s，链头为 #%(head)s。") == "审计日志止于 #4，链头为 #9。"
    assert set(chain.MESSAGES) >= {"entry_altered", "head_missing", "checkpoint_beyond_tail", "checkpoint_mismatch"}


def test_sealing_refuses_inconsistent_requests() -> None:
    entry = _build(1)[0]
    with pytest.raises(ValueError, match="needs that key"):
        chain.seal(entry)
    with pytest.raises(ValueError, match="key id"):
        chain.seal(dataclasses.replace(entry, key_id=""), KEY)
    with pytest.raises(ValueError, match="unknown audit hash"):
        chain.digest("md5", chain.GENESIS, b"")


def test_naive_timestamps_are_refused() -> None:
    entry = dataclasses.replace(_build(1)[0], at=dt.datetime(2026, 1, 1), key_id="")  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone"):
        chain.seal(entry)
