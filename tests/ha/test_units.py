"""The parts of the high-availability support that need no cluster: the standby-reads URL
derived from a multi-host URL, and pg-ha's settings, port layout, URL and generated files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from idnode.deploy.pgha import Cluster, ClusterError, Settings, main, to_yaml
from idnode.store.pgdriver import standby_reads_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://u:p@h1:5432,h2:5433/db?target_session_attrs=read-write",
            "postgresql://u:p@h1:5432,h2:5433/db?target_session_attrs=any",
        ),
        (
            "postgresql://u@h1,h2/db?sslmode=disable&target_session_attrs=primary",
            "postgresql://u@h1,h2/db?sslmode=disable&target_session_attrs=any",
        ),
        ("postgresql://u@h1,h2/db", None),
        ("postgresql://u@h1/db?target_session_attrs=any", None),
        ("postgresql://u@h1,h2/db?target_session_attrs=prefer-standby", None),
    ],
)
def test_standby_reads_url(url: str, expected: str | None) -> None:
    assert standby_reads_url(url) == expected


def test_settings_are_checked() -> None:
    with pytest.raises(ClusterError, match="members"):
        Settings(members=0)
    with pytest.raises(ClusterError, match="base-port"):
        Settings(base_port=65534)
    with pytest.raises(ClusterError, match="ttl"):
        Settings(ttl=5, loop_wait=1, retry_timeout=4)


def test_port_layout_and_url(tmp_path: Path) -> None:
    settings = Settings(base_port=20000, members=3, bindir="/usr/bin", passwords={"idnode": "pw"})
    cluster = Cluster(tmp_path, settings)
    assert settings.port_span == 8
    assert (settings.etcd_port, settings.etcd_peer_port) == (20000, 20001)
    assert [cluster.pg_port(n) for n in cluster.member_names] == [20002, 20004, 20006]
    assert cluster.rest_url("pg2") == "http://127.0.0.1:20007"
    assert cluster.url() == (
        "postgresql://idnode:pw@127.0.0.1:20002,127.0.0.1:20004,127.0.0.1:20006/idnode"
        "?target_session_attrs=read-write"
    )
    with pytest.raises(ClusterError, match="no member"):
        cluster.pg_port("pg3")


def test_yaml_is_json_compatible_flow_inside_block_mappings() -> None:
    text = to_yaml({"a": {"b": 1, "c": ["x", {"d": True}], "e": {}}, "f": None, "g": "it's"})
    assert text == (
        '"a":\n  "b": 1\n  "c": ["x", {"d": true}]\n  "e": {}\n"f": null\n"g": "it\'s"\n'
    )


def test_create_saves_settings_and_passwords_privately(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    created = Cluster.create(directory, Settings(base_port=21000, bindir="/usr/bin"))
    saved = directory / "cluster.json"
    assert saved.stat().st_mode & 0o777 == 0o600
    assert set(json.loads(saved.read_text())["passwords"]) == {"superuser", "replication", "idnode"}
    # Created again (an `up` after the first): the saved settings win.
    again = Cluster.create(directory, Settings(base_port=22000))
    assert again.settings == created.settings
    assert again.url() == created.url()


def test_commands_without_a_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--dir", str(tmp_path / "none")]) == 1
    assert "no cluster" in capsys.readouterr().err
    assert main(["down", "--dir", str(tmp_path / "none")]) == 0
    assert os.path.exists(tmp_path)
