"""Comments on an asset, at a moment of its audio or video (`at`, seconds) or on the whole, from
the team (a principal) or from a reviewer on a share link (a name they gave)."""

from __future__ import annotations

import math

from sqlalchemy import select
from sqlalchemy.orm import Session

from mediagen.auth.service import Principal
from mediagen.db.base import utcnow
from mediagen.db.session import Database
from mediagen.errors import Forbidden, NotFound, invalid
from mediagen.generations.events import EventType, record_event
from mediagen.generations.tables import Generation
from mediagen.studio.review import visible_asset
from mediagen.studio.schemas import MAX_AUTHOR, MAX_COMMENT, plain_text
from mediagen.studio.tables import Comment
from mediagen.vocabulary import Kind


def checked_at(row: Generation, at: float | None) -> float | None:
    """`at` is a moment of the asset's sound or picture: none on an image, and from 0 to the
    asset's duration on audio and video (which must be known, so not while it is being made)."""
    if at is None:
        return None
    if row.kind == Kind.IMAGE:
        raise invalid("at", "an image has no timeline; leave `at` out")
    if not math.isfinite(at) or at < 0:
        raise invalid("at", "must be a number of seconds, 0 or more")
    if row.duration is None:
        raise invalid("at", f"{row.kind} {row.id} has no duration yet (status {row.status}); leave `at` out")
    if at > row.duration:
        raise invalid("at", f"must be at most the {row.kind}'s duration, {row.duration:g} s")
    return at


def checked_text(field: str, text: str, limit: int, *, lines: bool) -> str:
    """Trimmed, 1 to `limit` characters, no control characters (the API's schema says the same;
    share links call in without it)."""
    text = text.strip()
    if not text:
        raise invalid(field, "may not be empty")
    if len(text) > limit:
        raise invalid(field, f"at most {limit} characters")
    try:
        return plain_text(text, lines=lines)
    except ValueError as exc:
        raise invalid(field, "control characters are not allowed") from exc


class CommentService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, principal: Principal, kind: str, gen_id: int, *, at: float | None, text: str) -> Comment:
        """A team member's comment on an asset they can see (a 404 first, whatever the text)."""
        with self.db.write() as s:
            row = visible_asset(s, principal, kind, gen_id)
            body = checked_text("text", text, MAX_COMMENT, lines=True)
            return self._insert(
                s, row, at=at, text=body, author_name=principal.email, author_user=principal.user_id
            )

    def add_as_reviewer(
        self, gen_id: int, *, at: float | None, text: str, author_name: str, share_id: int
    ) -> Comment:
        """A share-link reviewer's comment, under the name they gave; the link's scope was
        checked by its caller."""
        body = checked_text("text", text, MAX_COMMENT, lines=True)
        name = checked_text("author_name", author_name, MAX_AUTHOR, lines=False)
        with self.db.write() as s:
            row = s.get(Generation, gen_id)
            if row is None:
                raise NotFound(f"generation {gen_id} not found")
            return self._insert(s, row, at=at, text=body, author_name=name, share_id=share_id)

    def list_for(self, gen_id: int) -> list[Comment]:
        """The comments on an asset, for a caller whose scope was checked elsewhere (a share link)."""
        with self.db.read() as s:
            return self._of(s, gen_id)

    def delete(self, principal: Principal, kind: str, gen_id: int, comment_id: int) -> None:
        """Remove a comment: one's own, a share-link reviewer's (the team moderates those), or any
        for an admin."""
        with self.db.write() as s:
            visible_asset(s, principal, kind, gen_id)
            comment = s.get(Comment, comment_id)
            if comment is None or comment.generation_id != gen_id:
                raise NotFound(f"comment {comment_id} not found")
            mine = comment.author_user is not None and comment.author_user == principal.user_id
            if not (mine or comment.author_user is None or principal.is_admin):
                raise Forbidden("only its author or an admin can delete a team member's comment")
            s.delete(comment)
            s.flush()
            record_event(s, gen_id, EventType.COMMENTED, {"comment_id": comment_id, "deleted": True})

    @staticmethod
    def _of(s: Session, gen_id: int) -> list[Comment]:
        return list(
            s.scalars(
                select(Comment)
                .where(Comment.generation_id == gen_id)
                .order_by(Comment.created_at, Comment.id)
            )
        )

    @staticmethod
    def _insert(
        s: Session,
        row: Generation,
        *,
        at: float | None,
        text: str,
        author_name: str,
        author_user: str | None = None,
        share_id: int | None = None,
    ) -> Comment:
        comment = Comment(
            generation_id=row.id,
            at_seconds=checked_at(row, at),
            text=text,
            author_name=author_name,
            author_user=author_user,
            share_id=share_id,
            created_at=utcnow(),
        )
        s.add(comment)
        s.flush()
        record_event(s, row.id, EventType.COMMENTED, {"comment_id": comment.id, "at": comment.at_seconds})
        return comment

    # Last in the class: below it, `list` in an annotation would name this method.
    def list(self, principal: Principal, kind: str, gen_id: int) -> list[Comment]:
        """The comments on an asset the caller can see, oldest first."""
        with self.db.read() as s:
            visible_asset(s, principal, kind, gen_id)
            return self._of(s, gen_id)
