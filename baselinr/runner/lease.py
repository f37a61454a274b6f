"""Only one runner drives a run: a lease on the ``plan_runs`` row, renewed by a heartbeat.

The lease is taken with a compare-and-swap UPDATE (``WHERE lease_owner`` is what we read), so
two runners racing for a free lease cannot both win. A lease is free when nobody holds it, it
expired (holder stopped renewing), or its holder is a process on this host that is no longer
alive — so ``resume`` after ``kill -9`` needs no flag and nobody clears a lease by hand.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import datetime, timedelta

from sqlalchemy import and_, select, update
from sqlalchemy.exc import SQLAlchemyError

from baselinr.errors import StateError
from baselinr.runner.state import StateStore, aware, utcnow

logger = logging.getLogger("baselinr.runner")
LEASE_SECONDS = 60.0
HEARTBEAT_SECONDS = 15.0


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lease:
    """The right to drive one run. Use as a context manager: acquire, heartbeat, release."""

    def __init__(self, store: StateStore, run_id: str, ttl: float = LEASE_SECONDS,
                 heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self.store, self.run_id, self.ttl, self.heartbeat = store, run_id, ttl, heartbeat
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.owner = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def columns(self) -> dict[str, object]:
        """The lease's ``plan_runs`` columns, for ``StateStore.create_run`` to insert a run already held."""
        return {"lease_owner": self.owner, "lease_expires_at": utcnow() + timedelta(seconds=self.ttl),
                "host": self.host, "pid": self.pid}

    def hold_new(self) -> "Lease":
        """Hold the lease of a run just created with ``columns()`` (no race: nobody saw it free)."""
        self._hold()
        return self

    def acquire(self) -> None:
        """Take the lease or raise ``StateError`` naming the live holder."""
        table = self.store.plan_runs
        with self.store.engine.begin() as conn:
            row = conn.execute(select(table.c.lease_owner, table.c.lease_expires_at, table.c.host, table.c.pid)
                               .where(table.c.run_id == self.run_id)).first()
            if row is None:
                raise StateError(f"unknown run id {self.run_id!r}")
            if not self._is_free(row.lease_owner, aware(row.lease_expires_at), row.host, row.pid):
                raise StateError(f"run {self.run_id} is being executed by another runner (host {row.host}, "
                                 f"pid {row.pid}); wait for it to finish or stop it first")
            seen = table.c.lease_owner.is_(None) if row.lease_owner is None else table.c.lease_owner == row.lease_owner
            taken = conn.execute(update(table).where(and_(table.c.run_id == self.run_id, seen))
                                 .values(**self.columns())).rowcount
        if taken != 1:
            raise StateError(f"run {self.run_id} was just claimed by another runner; try again later")
        self._hold()

    def _hold(self) -> None:
        """Fence the store's writes with this lease and start the heartbeat."""
        self.store.fence = self.owner
        self._thread = threading.Thread(target=self._renew_loop, name="baselinr-lease", daemon=True)
        self._thread.start()

    def _is_free(self, owner: str | None, expires: datetime | None, host: str | None, pid: int | None) -> bool:
        if owner is None or expires is None or expires < utcnow():
            return True
        return host == self.host and pid is not None and pid != self.pid and not pid_alive(pid)

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                renewed = self._update_mine(lease_expires_at=utcnow() + timedelta(seconds=self.ttl))
            except SQLAlchemyError as exc:  # a missed renewal is retried at the next beat
                logger.warning("lease renewal for run %s failed: %s", self.run_id, str(exc).splitlines()[0])
                continue
            if not renewed:  # taken over after it expired: the fence stops this runner's next write
                logger.error("lease of run %s was taken over by another runner; this runner stops at its next "
                             "state write", self.run_id)
                return

    def _update_mine(self, **values: object) -> bool:
        """Update the run's lease columns if the lease is still ours; whether it was."""
        table = self.store.plan_runs
        with self.store.engine.begin() as conn:
            return conn.execute(update(table).where(and_(table.c.run_id == self.run_id,
                                                         table.c.lease_owner == self.owner))
                                .values(**values)).rowcount == 1

    def release(self) -> None:
        """Stop renewing and free the lease (only if still ours)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.store.fence = None
        try:
            self._update_mine(lease_owner=None, lease_expires_at=None)
        except SQLAlchemyError as exc:  # storage gone: the lease expires (or its dead pid frees it) by itself
            logger.warning("could not release the lease of run %s: %s", self.run_id, str(exc).splitlines()[0])

    def __enter__(self) -> "Lease":
        if self._thread is None:  # not already held through hold_new()
            self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
