"""Whether a database error is worth retrying: transient (the same work may succeed later) or
permanent. Shared by profiling, where a transient error fails the whole table instead of one
metric, and the runner, which retries the table.

Transient: lost connection, timeout, lock, deadlock, serialization failure, cancelled or
interrupted statement, a server starting up or out of connection slots. Everything else (missing
table, bad SQL, a value an aggregate refuses, a login or permission refused) is permanent.
"""

from __future__ import annotations

import re

from sqlalchemy import exc as sa_exc

from baselinr.errors import TaskError

# PostgreSQL SQLSTATEs worth retrying: connection exceptions (class 08), serialization failure,
# deadlock, lock not available, query canceled (statement timeout), admin shutdown / crash,
# cannot connect now, too many connections.
_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03", "53300"}
# SQLite's lock errors, and the interrupted statement of SQLite and DuckDB (a cancel request).
_TRANSIENT_MESSAGES = ("database is locked", "database table is locked", "database is busy", "interrupted")
# The server refused the login itself. libpq reports this without a SQLSTATE, so the server's
# (English) text is all there is: any authentication method failing (28P01, 28000), no
# pg_hba.conf entry, an unknown role or database (3D000), no CONNECT privilege (42501), no
# password given; and MySQL's "Access denied".
_LOGIN_REFUSED = re.compile(r'authentication failed|no pg_hba\.conf entry|(role|database) ".*" does not exist|'
                            r'is not permitted to log in|permission denied for database|no password supplied|'
                            r'access denied for user')


def is_transient(error: BaseException) -> bool:
    """Whether retrying the same work may succeed."""
    if isinstance(error, TaskError):
        return error.transient
    if isinstance(error, (sa_exc.DisconnectionError, sa_exc.TimeoutError, TimeoutError, ConnectionError)):
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate:
        return sqlstate.startswith("08") or sqlstate in _TRANSIENT_SQLSTATES
    message = str(orig).lower()
    if _LOGIN_REFUSED.search(message):
        return False
    if any(marker in message for marker in _TRANSIENT_MESSAGES):
        return True
    # A driver OperationalError/InterfaceError without SQLSTATE: the server was not reached
    # or went away (psycopg, for example); SQLite reports bad SQL as OperationalError too.
    return isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)) and \
        type(orig).__module__.split(".")[0] != "sqlite3"
