"""The change counters shared by the processes of one database (idnode.store.generations)."""

from __future__ import annotations

from pathlib import Path

from idnode.store.generations import Generations, generations_for


def test_postgres_urls_name_the_database_not_the_credentials() -> None:
    one = generations_for("postgresql://a:secret@127.0.0.1:5432/idnode")
    two = generations_for("postgresql://b:other@127.0.0.1:5432/idnode")
    other = generations_for("postgresql://a:secret@127.0.0.1:5432/elsewhere")
    try:
        assert one.path is not None and one.path == two.path
        assert other.path != one.path
    finally:
        for g in (one, two, other):
            g.close()


def test_multi_host_urls_are_accepted() -> None:
    url = "postgresql://idnode:pw@127.0.0.1:5440,127.0.0.1:5442/idnode?target_session_attrs=any"
    generations = generations_for(url)
    try:
        assert generations.path is not None
    finally:
        generations.close()


def test_a_bump_in_one_mapping_is_seen_by_another(tmp_path: Path) -> None:
    database = str(tmp_path / "node.db")
    writer, reader = generations_for(database), generations_for(database)
    try:
        assert writer.path == Path(database + "-gen")
        slot = Generations.slot("88.118.8/PV-1")
        stamp = reader.stamp(slot)
        assert reader.current(slot, stamp)
        writer.bump(["88.118.8/PV-2"] if Generations.slot("88.118.8/PV-2") != slot else [])
        assert reader.current(slot, stamp)
        writer.bump(["88.118.8/PV-1"])
        assert not reader.current(slot, stamp)
        stamp = reader.stamp(slot)
        writer.bump(None)  # everything
        assert not reader.current(slot, stamp)
    finally:
        writer.close()
        reader.close()
