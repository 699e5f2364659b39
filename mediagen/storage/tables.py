"""Blob index (shared by every backend) and the chunk rows of the `db` backend."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from mediagen.db.base import Base, UTCDateTime, utcnow


class Blob(Base):
    """One row per distinct content (sha256). `refcount` counts the records that point at it.

    Keys are 64 lowercase hex digits. The `db` backend also keeps short-lived *staging* rows here
    (key `tmp-` + 60 hex digits) that own the chunks of an upload whose sha is not known yet; they
    never satisfy `is_blob_key`, so no reader can see them.

    `touched_at` is gc's grace clock: set when the content is put (again) and when its refcount
    drops to zero, so a key that `put` just returned, or an asset that was just deleted while
    someone is still streaming it, survives at least one grace period. For staging rows it is the
    upload's heartbeat.
    """

    __tablename__ = "blobs"
    __table_args__ = (Index("ix_blobs_refcount_touched", "refcount", "touched_at"),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    chunk_size: Mapped[int] = mapped_column(Integer)
    refcount: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    touched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BlobChunk(Base):
    """Fixed-size slices of a blob; chunk `seq` covers bytes [seq*chunk_size, (seq+1)*chunk_size)."""

    __tablename__ = "blob_chunks"

    blob_key: Mapped[str] = mapped_column(ForeignKey("blobs.key", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
