"""`docker-compose.cluster.yml` holds together (no Docker engine needed): three cluster-enabled masters at the
addresses they announce, joined by the init service, and app replicas pointed at them in cluster mode."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.server import ROOT

yaml = pytest.importorskip("yaml")


def test_the_cluster_compose_file_is_consistent() -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.cluster.yml").read_text())
    services = compose["services"]
    addresses = []
    for name in ("redis-1", "redis-2", "redis-3"):
        node = services[name]
        address = node["networks"]["chat"]["ipv4_address"]
        command = node["command"]
        assert command[command.index("--cluster-enabled") + 1] == "yes"
        assert command[command.index("--cluster-announce-ip") + 1] == address
        addresses.append(address)
    init = " ".join(services["redis-cluster-init"]["command"])
    assert all(f"{a}:6379" in init for a in addresses) and "--cluster-replicas 0" in init
    for app in ("app1", "app2", "app3"):
        env = services[app]["environment"]
        assert env["REDIS_URL"] == f"redis+cluster://{addresses[0]}:6379"
        assert "DATABASE_URL" not in env  # conversations live in the cluster too
        assert services[app]["depends_on"]["redis-cluster-init"]["condition"] == "service_completed_successfully"
