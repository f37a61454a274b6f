"""gather_catalog reflects only the schemas the selections read, on a real PostgreSQL server."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, text

from baselinr.config import parse_config
from baselinr.connectors import gather_catalog


def test_only_needed_schemas_are_reflected(pg_db: dict, pg_server) -> None:
    engine = create_engine(pg_server.url(pg_db["database"]))
    with engine.begin() as conn:
        conn.execute(text('CREATE SCHEMA "other"'))
        conn.execute(text('CREATE SCHEMA "Mixed Case"'))
    md = MetaData()
    Table("a", md, Column("id", Integer), Column("name", String(10)))
    Table("b", md, Column("id", Integer), schema="other")
    Table("c", md, Column("id", Integer), schema="Mixed Case")
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text('CREATE VIEW "v_a" AS SELECT id FROM "a"'))
    engine.dispose()

    config = parse_config({"sources": {"pg": pg_db},
                           "profiling": {"tables": [{"source": "pg", "pattern": "*"},
                                                    {"source": "pg", "schema": "Mixed Case", "table": "c"}]}})
    catalog = gather_catalog(config)
    assert sorted((t.schema_, t.name, t.kind) for t in catalog.tables) == [
        ("Mixed Case", "c", "table"), ("public", "a", "table"), ("public", "v_a", "view")]
    assert catalog.warehouse_types == {"pg": "postgres"}
    a = next(t for t in catalog.tables if t.name == "a")
    assert [(c.name, c.category) for c in a.columns] == [("id", "integer"), ("name", "string")]
