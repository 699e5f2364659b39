"""Blob index (shared by every backend) and the chunk rows of the `db` backend."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from mediagen.db.base import Base, UTCDateTime, utcnow


class Blob(Base):
    """One row per distinct content (sha256). `refcount` counts the records that point at it."""

    __tablename__ = "blobs"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    chunk_size: Mapped[int] = mapped_column(Integer)
    refcount: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BlobChunk(Base):
    """Fixed-size slices of a blob; chunk `seq` covers bytes [seq*chunk_size, (seq+1)*chunk_size)."""

    __tablename__ = "blob_chunks"

    blob_key: Mapped[str] = mapped_column(ForeignKey("blobs.key", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
