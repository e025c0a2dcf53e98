from ansible_collections.dockyard.fleet.plugins.module_utils._edge_proxy import render_edge_config
from ansible_collections.dockyard.fleet.plugins.module_utils._release_spec import parse_port


def test_edge_config_forwards_each_port_and_names_the_release():
    conf = render_edge_config([parse_port("80:8080"), parse_port("8443:9000")], "10.0.0.5", "r42", 7)
    assert "server 10.0.0.5:8080 max_fails=0;" in conf
    assert "server 10.0.0.5:9000 max_fails=0;" in conf
    assert "listen 80;" in conf and "listen 8443;" in conf
    assert conf.count("add_header X-Dockyard-Release r42 always;") == 2
    assert "worker_shutdown_timeout 7s;" in conf
    assert conf.count("{") == conf.count("}")


def test_edge_config_drain_timeout_at_least_one_second():
    assert "worker_shutdown_timeout 1s;" in render_edge_config([parse_port(80)], "10.0.0.5", "r1", 0)
