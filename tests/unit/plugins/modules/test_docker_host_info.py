from ansible_collections.dockyard.fleet.plugins.modules.docker_host_info import engine_summary


def test_engine_summary_reads_the_fields_operators_check():
    info = {
        "Driver": "overlay2",
        "CgroupDriver": "systemd",
        "LiveRestoreEnabled": True,
        "LoggingDriver": "json-file",
        "RegistryConfig": {"Mirrors": ["https://mirror.example.com/"]},
        "Containers": 3,
        "ContainersRunning": 2,
        "Images": 7,
    }
    version = {"Version": "20.10.24", "ApiVersion": "1.41"}
    assert engine_summary(info, version) == {
        "server_version": "20.10.24",
        "api_version": "1.41",
        "storage_driver": "overlay2",
        "cgroup_driver": "systemd",
        "live_restore_enabled": True,
        "logging_driver": "json-file",
        "registry_mirrors": ["https://mirror.example.com/"],
        "containers": 3,
        "containers_running": 2,
        "images": 7,
    }


def test_engine_summary_of_a_bare_engine():
    summary = engine_summary({"RegistryConfig": None}, {})
    assert summary["registry_mirrors"] == []
    assert summary["live_restore_enabled"] is False
    assert summary["containers"] == 0
