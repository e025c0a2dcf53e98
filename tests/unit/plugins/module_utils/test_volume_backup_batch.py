import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils import _volume_backup_batch as batch


class TaskEndedError(Exception):
    """fail_json / exit_json of the fake module: the task's end, with its result."""

    def __init__(self, failed, result):
        super().__init__(result.get("msg"))
        self.failed = failed
        self.result = result


class FakeModule:
    def __init__(self, **params):
        self.params = {"volume": None, "volumes": None, "volume_labels": None, "backup_id": "latest", **params}
        self.check_mode = False
        self._diff = True
        self.warnings = []

    def warn(self, text):
        self.warnings.append(text)

    def fail_json(self, **result):
        raise TaskEndedError(True, result)

    def exit_json(self, **result):
        raise TaskEndedError(False, result)


class FakeApi:
    def __init__(self, names):
        self.names = names
        self.filters = None

    def volumes(self, filters=None):
        self.filters = filters
        return {"Volumes": [{"Name": name} for name in self.names]}


class FakeClient:
    def __init__(self, names=()):
        self.api = FakeApi(list(names))


class FakeRunner:
    """Stands in for VolumeBackup: volume "bad" fails the way the runner fails (module.fail_json)."""

    ran = []

    def __init__(self, module, client):
        self.module = module
        self.result = {"changed": False, "bytes_in": 0}

    def run(self):
        name = self.module.params["volume"]
        FakeRunner.ran.append(name)
        if name == "bad":
            self.module.fail_json(msg="volume bad does not exist on this host", **self.result)
        return {
            "changed": name == "new",
            "bytes_in": 10,
            "bytes_out": 4,
            "duration": 0.5,
            "diff": {"before": {"newest_backup": None}, "after": {"newest_backup": name + "-1"}},
        }

    def cleanup(self):
        pass


@pytest.fixture
def fake_runner(monkeypatch):
    FakeRunner.ran = []
    monkeypatch.setattr(batch, "VolumeBackup", FakeRunner)
    return FakeRunner


def test_label_selection_asks_docker_for_every_label_and_sorts():
    client = FakeClient(["zeta", "alpha"])
    names = batch.selected_volumes(client, {"volumes": None, "volume_labels": {"b": 1, "a": "x"}})
    assert names == ["alpha", "zeta"]
    assert client.api.filters == {"label": ["a=x", "b=1"]}


def test_a_list_keeps_its_order_and_each_name_once():
    assert batch.selected_volumes(FakeClient(), {"volumes": ["b", "a", "b"]}) == ["b", "a"]


def test_a_failing_volume_does_not_stop_the_others(fake_runner):
    module = FakeModule(volumes=["new", "bad", "same"], state="backup")
    with pytest.raises(TaskEndedError) as ended:
        batch.run_volumes(module, FakeClient())
    assert fake_runner.ran == ["new", "bad", "same"]
    result = ended.value.result
    assert ended.value.failed
    assert result["msg"] == "volume_backup failed on 1 of 3 volumes: bad: volume bad does not exist on this host"
    assert result["changed"] is True
    assert result["volumes"] == ["new", "bad", "same"]
    assert [r.get("failed", False) for r in result["results"]] == [False, True, False]
    assert result["bytes_in"] == 20
    assert result["diff"]["after"] == {"new": {"newest_backup": "new-1"}, "same": {"newest_backup": "same-1"}}


def test_all_good_exits_with_every_result(fake_runner):
    module = FakeModule(volumes=["same"], state="backup")
    with pytest.raises(TaskEndedError) as ended:
        batch.run_volumes(module, FakeClient())
    assert not ended.value.failed
    assert ended.value.result["changed"] is False
    assert ended.value.result["results"][0]["volume"] == "same"


def test_nothing_selected_warns_and_changes_nothing(fake_runner):
    module = FakeModule(volume_labels={"app": "gone"}, state="backup")
    with pytest.raises(TaskEndedError) as ended:
        batch.run_volumes(module, FakeClient([]))
    assert not ended.value.failed
    assert ended.value.result["changed"] is False
    assert module.warnings == ["no volume has the labels app=gone: nothing to do"]


def test_empty_labels_would_select_everything_and_are_refused(fake_runner):
    with pytest.raises(TaskEndedError) as ended:
        batch.run_volumes(FakeModule(volume_labels={}, state="backup"), FakeClient(["a"]))
    assert ended.value.failed
    assert "volume_labels is empty" in ended.value.result["msg"]
    assert fake_runner.ran == []


def test_one_backup_id_for_several_volumes_is_refused(fake_runner):
    module = FakeModule(volumes=["a", "b"], state="restore", backup_id="20261128T031500.000000Z-1a2b3c")
    with pytest.raises(TaskEndedError) as ended:
        batch.run_volumes(module, FakeClient())
    assert ended.value.failed
    assert "20261128T031500.000000Z-1a2b3c" in ended.value.result["msg"]
    assert "a, b" in ended.value.result["msg"]
    assert fake_runner.ran == []
