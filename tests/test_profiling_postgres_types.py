"""PostgreSQL types the database cannot aggregate as-is, and numeric NaN/Infinity."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from baselinr.profiling.aggregates import BASE_METRICS
from tests.test_profiling_fixtures import column, make_engine, profile

# SQLAlchemy does not know xml and point: they are reflected as NullType ("other"), with a warning.
pytestmark = pytest.mark.filterwarnings("ignore:Did not recognize type")

DDL = [
    "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
    "CREATE TABLE odd (j json, jb jsonb, x xml, u uuid, m mood, a integer[], iv interval, n numeric, r real, "
    "by bytea, p point)",
    """INSERT INTO odd VALUES
       ('{"a":1}', '{"a":1}', '<a>1</a>', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'sad', '{1,2}', '1 day',
        'NaN', 'NaN', '\\x00ff', '(1,2)'),
       ('{"a": 1}', '{"a": 1}', '<a>1</a>', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy', '{1,2}', '2 days',
        'Infinity', 'Infinity', '\\x00ff', '(1,2)'),
       ('{"a":1}', '{"b":2}', '<b/>', 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'ok', '{3}', '1 day',
        '-Infinity', 1.5, '\\x01', '(3,4)'),
       ('[1]', '[1]', '<c/>', NULL, 'ok', NULL, NULL, 1.5, 2.5, NULL, NULL),
       (NULL, NULL, NULL, NULL, NULL, NULL, NULL, 2.5, NULL, NULL, NULL)""",
]


@pytest.fixture
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    engine = make_engine("postgresql", request, tmp_path)
    with engine.begin() as conn:
        for statement in DDL:
            conn.exec_driver_sql(statement)
    return engine


def test_types_without_equality_or_length_profile_through_text(engine: Engine) -> None:
    result, selects = profile(engine, "odd")
    assert all(not c.errors for c in result.columns), {c.name: c.errors for c in result.columns}
    assert selects == result.queries == 2
    # json has no equality: compared as text, so the two spellings of {"a":1} differ; jsonb normalises.
    assert column(result, "j")["distinct_count"] == 3
    assert column(result, "jb")["distinct_count"] == 3
    assert column(result, "x")["distinct_count"] == 3 and column(result, "p")["distinct_count"] == 2
    assert column(result, "u")["distinct_count"] == 2 and "min" not in column(result, "u")
    assert column(result, "a")["distinct_count"] == 2 and column(result, "iv")["distinct_count"] == 2
    assert set(column(result, "iv")) == set(BASE_METRICS)  # an INTERVAL is not a number: no mean, no histogram
    assert column(result, "by") == {"count": 5, "null_count": 2, "null_ratio": 0.4, "distinct_count": 2,
                                    "unique_ratio": 2 / 3}
    mood = column(result, "m")
    # enum order (declaration), lengths of the labels
    assert (mood["min"], mood["max"], mood["min_length"], mood["max_length"]) == ("sad", "happy", 2, 5)
    assert mood["avg_length"] == pytest.approx((3 + 5 + 2 + 2) / 4)


def test_numeric_and_real_nan_and_infinity_are_counted_and_kept_out(engine: Engine) -> None:
    result, _ = profile(engine, "odd")
    n = column(result, "n")
    assert (n["nan_count"], n["inf_count"], n["null_count"]) == (1, 2, 0)
    assert (n["min"], n["max"], n["distinct_count"]) == (Decimal("1.5"), Decimal("2.5"), 2)
    assert n["unique_ratio"] == 1.0 and n["mean"] == 2.0
    assert n["histogram"] == {"edges": [Decimal("1.5"), *(Decimal("1.5") + Decimal("0.1") * i for i in range(1, 10)),
                                        Decimal("2.5")], "counts": [1, 0, 0, 0, 0, 0, 0, 0, 0, 1]}
    r = column(result, "r")
    assert (r["nan_count"], r["inf_count"], r["min"], r["max"], r["mean"]) == (1, 1, 1.5, 2.5, 2.0)
