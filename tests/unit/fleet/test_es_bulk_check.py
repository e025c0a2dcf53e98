"""The test receiver's check: which sequence numbers of a run arrived, duplicates and strays counted."""

import importlib.util
import json
from pathlib import Path

RECEIVER = Path(__file__).resolve().parents[2] / "receivers" / "es_bulk.py"
SPEC = importlib.util.spec_from_file_location("es_bulk", RECEIVER)
es_bulk = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(es_bulk)


def deliver(store, run, seqs):
    texts = [b'{"m": "run=%s seq=%d x"}' % (run.encode(), seq) for seq in seqs]
    store.record(texts, [("logs", "id-%d" % seq) for seq in seqs], ["logs"] * len(texts))


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


def bulk(*lines):
    return ("\n".join(lines) + "\n").encode()


def answer(body, index=None):
    es_bulk.STORE.reset()
    status, payload = es_bulk.handle_bulk(index, body)
    return status, json.loads(payload) if isinstance(payload, bytes) else payload


def test_bulk_items_answered_one_by_one_and_recorded():
    status, reply = answer(
        bulk(
            '{"index":{"_index":"logs-a","_id":"x-1"}}',
            '{"message":"run=b seq=0"}',
            '{"create":{"_index":"logs-a","_id":"x-2"}}',
            '{"message":"run=b seq=1"}',
        )
    )
    assert status == 200 and reply["errors"] is False
    assert [item["index" if n == 0 else "create"]["_id"] for n, item in enumerate(reply["items"])] == ["x-1", "x-2"]
    assert es_bulk.STORE.check("es", "b", 2)["distinct_ids"] == 2


def test_blank_lines_are_skipped_like_elasticsearch():
    status, reply = answer(bulk('{"index":{"_index":"logs-a"}}', "", '{"message":"run=c seq=0"}', "  "))
    assert status == 200 and len(reply["items"]) == 1
    assert es_bulk.STORE.check("es", "c", 1)["missing_count"] == 0


def test_an_upper_case_index_fails_that_item_only():
    status, reply = answer(
        bulk('{"index":{"_index":"Logs"}}', '{"m":"run=d seq=0"}', '{"index":{"_index":"logs"}}', '{"m":"run=d seq=1"}')
    )
    assert status == 200 and reply["errors"] is True
    assert [item["index"]["status"] for item in reply["items"]] == [400, 201]


def test_malformed_lines_are_named():
    status, reply = answer(bulk('{"index":{"_index":"logs"}}', '{"m": oops}'))
    assert status == 400 and "line [2]" in reply["error"]["reason"]
    status, reply = answer(bulk('{"index":{"_index":"logs","_type":"doc"}}', "{}"))
    assert status == 400 and "_type" in reply["error"]["reason"]


def test_a_delete_has_no_source_line():
    status, reply = answer(
        bulk('{"delete":{"_index":"logs","_id":"x"}}', '{"index":{"_index":"logs"}}', '{"m":"run=e seq=0"}')
    )
    assert status == 200 and [next(iter(item)) for item in reply["items"]] == ["delete", "index"]


def test_arrival_times_mark_the_first_document_and_the_last_new_number():
    store = es_bulk.Store()
    deliver(store, "t", range(3))
    first = store.check("es", "t", 5)
    deliver(store, "t", [3, 4])
    complete = store.check("es", "t", 5)
    deliver(store, "t", [4])  # a repeat brings nothing new
    repeated = store.check("es", "t", 5)
    assert first["first_at"] == complete["first_at"] == repeated["first_at"] <= first["last_new_at"]
    assert complete["last_new_at"] >= first["last_new_at"]
    assert repeated["last_new_at"] == complete["last_new_at"]


def test_a_large_bulk_is_read_in_parts_and_answered_in_order():
    lines = []
    for seq in range(2500):  # more pairs than one part holds
        lines += ['{"index":{"_index":"logs-a","_id":"x-%d"}}' % seq, '{"message":"run=big seq=%d"}' % seq]
    status, reply = answer(bulk(*lines))
    assert status == 200 and reply["errors"] is False
    assert [item["index"]["_id"] for item in reply["items"]] == ["x-%d" % seq for seq in range(2500)]
    check = es_bulk.STORE.check("es", "big", 2500)
    assert (check["received"], check["duplicates"], check["distinct_ids"]) == (2500, 0, 2500)


def test_the_index_can_come_from_the_path():
    status, reply = answer(bulk('{"index":{}}', '{"m":"run=p seq=0"}'), index="logs-path")
    assert status == 200 and reply["items"][0]["index"]["_index"] == "logs-path"
    status, reply = answer(bulk('{"index":{}}', '{"m":"run=p seq=0"}'))
    assert reply["errors"] is True and reply["items"][0]["index"]["status"] == 400


def test_polls_go_on_from_the_numbers_that_all_arrived():
    store = es_bulk.Store()
    deliver(store, "g", [n for n in range(100) if n not in (40, 70)])
    assert store.check("es", "g", 100)["missing"] == [40, 70]
    deliver(store, "g", [40])
    assert store.check("es", "g", 100)["missing"] == [70]
    deliver(store, "g", [70])
    check = store.check("es", "g", 100)
    assert (check["missing"], check["missing_count"]) == ([], 0)
    assert store.check("es", "g", 120)["missing"] == list(range(100, 120))


def usual_bulk(run, seqs, index="logs-app-2026.12.06"):
    """A bulk shaped as rsyslog's omelasticsearch sends it (its spacing, an _id per document)."""
    lines = []
    for seq in seqs:
        lines += ['{"index":{"_index": "%s","_id":"c0ffee-%d"}}' % (index, seq * 210)]
        lines += ['{"message":"run=%s seq=%d %s","host":"h\\u00e9","container":{"id":"c0ffee"}}' % (run, seq, "x" * 40)]
    return bulk(*lines)


def without_took(payload):
    return {key: value for key, value in json.loads(payload).items() if key != "took"}


def test_the_usual_bulk_is_answered_and_recorded_as_item_by_item(monkeypatch):
    body = usual_bulk("u", range(3000))
    assert es_bulk._usual_bulk(body) is not None  # the one-pass path takes rsyslog's shape
    es_bulk.STORE.reset()
    fast = es_bulk.handle_bulk(None, body)
    fast_check, fast_stats = es_bulk.STORE.check("es", "u", 3000), dict(es_bulk.STORE.indices)
    monkeypatch.setattr(es_bulk, "_usual_bulk", lambda body: None)
    es_bulk.STORE.reset()
    careful = es_bulk.handle_bulk(None, body)
    careful_check = es_bulk.STORE.check("es", "u", 3000)
    assert fast[0] == careful[0] == 200
    assert without_took(fast[1]) == without_took(careful[1])
    drop_times = ("first_at", "last_new_at")
    assert {k: v for k, v in fast_check.items() if k not in drop_times} == {
        k: v for k, v in careful_check.items() if k not in drop_times
    }
    assert fast_check["received"] == fast_check["distinct_ids"] == 3000
    assert fast_stats == dict(es_bulk.STORE.indices) == {"logs-app-2026.12.06": 3000}


def test_documents_of_several_runs_or_none_in_one_bulk_are_counted_apart():
    body = usual_bulk("r1", range(5)) + usual_bulk("r2", range(3)) + bulk('{"index":{"_index":"l","_id":"n"}}', "{}")
    status, reply = answer(body)
    assert status == 200 and len(reply["items"]) == 9
    assert es_bulk.STORE.check("es", "r1", 5)["received"] == 5
    assert es_bulk.STORE.check("es", "r2", 3)["received"] == 3
    assert es_bulk.STORE.counters["es_without_seq"] == 1 and es_bulk.STORE.counters["es_documents"] == 9


def test_names_that_are_not_their_own_json_text_take_the_careful_path():
    for action, status in (
        ('{"index":{"_index":"logs","_id":"caf\\u00e9"}}', 201),  # an escape in the _id
        ('{"index":{"_index":"logs","_id":"café"}}', 201),  # non-ASCII
        ('{"index":{"_id":"x","_index":"logs"}}', 201),  # another order
        ('{"index":{"_index":"Logs","_id":"x"}}', 400),  # a capital: that item fails
    ):
        body = bulk(action, '{"m":"run=v seq=0"}')
        assert es_bulk._usual_bulk(body) is None, action
        item = answer(body)[1]["items"][0]["index"]
        expected = json.loads(action)["index"]
        answered = (item["status"], item["_index"], item.get("_id", expected["_id"]))  # an error item has no _id
        assert answered == (status, expected["_index"], expected["_id"])


def test_a_source_line_that_is_not_one_json_value_is_refused():
    for source in ('{"m":"run=w seq=0"},{"m":"run=w seq=1"}', '{"m": oops}', ""):
        body = bulk('{"index":{"_index":"logs","_id":"x"}}', source, '{"index":{"_index":"logs","_id":"y"}}', "{}")
        assert es_bulk._usual_bulk(body) is None, source
    status, reply = answer(bulk('{"index":{"_index":"logs","_id":"x"}}', '{"m":"run=w seq=0"},{"m":1}'))
    assert status == 400 and "line [2]" in reply["error"]["reason"]
