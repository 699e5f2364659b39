"""Which processes hold leases, and whether they are still alive.

A lease says how long a worker may hold a job; if the worker dies (kill -9, a lost machine) the
job waits out the rest of it. Workers register here and beat a heartbeat on every reconcile tick;
a claim records its holder (`generations.lease_owner`). A holder is dead when its heartbeat is
older than a few ticks, or at once when it ran on this machine and its process is gone (a restart
after a crash); reconcile then takes its leases back without waiting.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from mediagen.db.base import utcnow
from mediagen.db.session import Database
from mediagen.generations.tables import Duty, Generation, Worker
from mediagen.vocabulary import ACTIVE

HOST = socket.gethostname()[:255]


def new_process_id() -> str:
    """This process's name as a lease holder: host, pid and a nonce (pids are reused)."""
    return f"{HOST[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


class WorkerRegistry:
    def __init__(self, database: Database, process_id: str, *, dead_after: timedelta) -> None:
        self.db = database
        self.process_id = process_id
        self.dead_after = dead_after

    def register(self) -> None:
        now = utcnow()
        with self.db.write() as s:
            s.merge(Worker(id=self.process_id, host=HOST, pid=os.getpid(), started_at=now, seen_at=now))

    def heartbeat(self) -> None:
        with self.db.write() as s:
            s.execute(update(Worker).where(Worker.id == self.process_id).values(seen_at=utcnow()))

    def unregister(self) -> None:
        with self.db.write() as s:
            s.execute(delete(Worker).where(Worker.id == self.process_id))

    def claim_duty(self, name: str, seconds: float) -> bool:
        """Hold the duty `name` for `seconds` (taking it over if its holder let it lapse); True
        when this process holds it now and should do the chore."""
        now = utcnow()
        until = now + timedelta(seconds=seconds)
        with self.db.write() as s:
            taken = s.execute(
                update(Duty)
                .where(Duty.name == name, or_(Duty.holder == self.process_id, Duty.until < now))
                .values(holder=self.process_id, until=until)
            )
            if int(getattr(taken, "rowcount", 0) or 0) == 1:
                return True
            if s.get(Duty, name) is not None:
                return False
            s.add(Duty(name=name, holder=self.process_id, until=until))
            try:
                s.flush()
            except IntegrityError:  # another process created it first
                s.rollback()
                return False
        return True

    def dead(self, now: datetime) -> list[str]:
        """Registered workers that are gone: silent too long, or a dead process on this host."""
        with self.db.read() as s:
            rows = s.execute(select(Worker.id, Worker.host, Worker.pid, Worker.seen_at)).all()
        return [
            r.id
            for r in rows
            if r.id != self.process_id
            and (now - r.seen_at > self.dead_after or (r.host == HOST and not pid_alive(r.pid)))
        ]

    def release_dead(self, now: datetime) -> int:
        """Expire the leases dead workers hold, so reconcile re-dispatches their jobs now."""
        dead = self.dead(now)
        if not dead:
            return 0
        with self.db.write() as s:
            result = s.execute(
                update(Generation)
                .where(Generation.lease_owner.in_(dead), Generation.status.in_(ACTIVE))
                .values(lease_until=now - timedelta(microseconds=1))
            )
            s.execute(delete(Worker).where(Worker.id.in_(dead)))
        return int(getattr(result, "rowcount", 0) or 0)
