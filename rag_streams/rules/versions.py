"""Version rules, pure: which message is stale, which is a duplicate, what a delete removes.

The state per document is ``(version, deleted)``: the highest version applied and whether
that version was a delete. Versions are monotonic per document (e.g. epoch ms). The chunk stage
also keeps the accepted version's content hash and chunk count (``[version, deleted, hash,
count]``), so an unchanged re-publish is a retag (see rag_streams.rules.retag); rows written
before that are two elements long and read with no hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, cast

__all__ = ["DocState", "Verdict", "judge"]


@dataclass(frozen=True, slots=True)
class DocState:
    version: int
    deleted: bool = False
    content: str | None = None  #: the chunk stage's document hash of this version (None: unknown)
    chunk_count: int = 0  #: the chunk stage's chunk count of this version (with ``content``)

    def to_json(self) -> list[object]:
        if self.content is None:
            return [self.version, self.deleted]
        return [self.version, self.deleted, self.content, self.chunk_count]

    @classmethod
    def from_json(cls, value: object) -> DocState | None:
        if value is None:
            return None
        row = cast("list[Any]", value)
        content = str(row[2]) if len(row) > 2 and row[2] is not None else None
        count = int(row[3]) if len(row) > 3 else 0
        return cls(int(row[0]), bool(row[1]), content, count)


class Verdict(Enum):
    APPLY = "apply"  # newer than anything applied: process it
    CURRENT = "current"  # the version being applied now (further chunks of it)
    STALE = "stale"  # older than what was applied: drop and count
    DUPLICATE = "duplicate"  # this exact delete was already applied
    REPAIR = "repair"  # a repair replay (``verify --repair``): apply again, leave the state as it is


def judge(state: DocState | None, version: int, *, is_delete: bool, repair: bool = False) -> Verdict:
    """Decide what to do with a message of ``version`` given the document's applied state.

    A repair replay re-applies the applied version of a live document, or a delete of a
    document that is deleted at that version or later. It never applies anything older than
    a live version, so a repair racing a newer update cannot resurrect old content.
    """
    if state is None or version > state.version:
        return Verdict.APPLY
    if repair and (state.deleted if is_delete else (version == state.version and not state.deleted)):
        return Verdict.REPAIR
    if version < state.version:
        return Verdict.STALE
    # same version
    if state.deleted:
        return Verdict.DUPLICATE if is_delete else Verdict.STALE
    # a delete and an upsert of one version: the delete wins, whichever comes first
    return Verdict.APPLY if is_delete else Verdict.CURRENT
