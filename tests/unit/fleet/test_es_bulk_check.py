"""The test receiver's check: which sequence numbers of a run arrived, duplicates and strays counted."""

import importlib.util
from pathlib import Path

RECEIVER = Path(__file__).resolve().parents[2] / "receivers" / "es_bulk.py"
SPEC = importlib.util.spec_from_file_location("es_bulk", RECEIVER)
es_bulk = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(es_bulk)


def deliver(store, run, seqs):
    store.record([({}, "id-%d" % seq, "logs", b"run=%s seq=%d x" % (run.encode(), seq)) for seq in seqs])


def test_all_arrived_once():
    store = es_bulk.Store()
    deliver(store, "r", range(1000))
    check = store.check("es", "r", 1000)
    assert (check["received"], check["missing_count"], check["missing"]) == (1000, 0, [])
    assert (check["duplicates"], check["deliveries"], check["unexpected"]) == (0, 1000, 0)


def test_missing_numbers_are_the_first_fifty_absent():
    store = es_bulk.Store()
    deliver(store, "r", [n for n in range(1000) if n % 10])
    check = store.check("es", "r", 1000)
    assert check["received"] == 900
    assert check["missing_count"] == 100
    assert check["missing"] == list(range(0, 500, 10))


def test_duplicates_and_numbers_beyond_the_count():
    store = es_bulk.Store()
    deliver(store, "r", [*range(10), 3, 3, 7, 10, 11])
    check = store.check("es", "r", 10)
    assert (check["received"], check["missing_count"]) == (10, 0)
    assert (check["duplicates"], check["deliveries"], check["unexpected"]) == (3, 15, 2)


def test_runs_and_channels_are_apart():
    store = es_bulk.Store()
    deliver(store, "a", range(5))
    assert store.check("es", "b", 5)["missing_count"] == 5
    assert store.check("tcp", "a", 5)["missing_count"] == 5
    store.reset()
    assert store.check("es", "a", 5)["deliveries"] == 0
