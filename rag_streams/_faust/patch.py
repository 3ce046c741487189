"""How every Faust work-around is installed: a method wrapped once per work-around.

``patch_once(owner, name, wrap)`` replaces ``owner.name`` with ``wrap(current)`` unless that
work-around is already in the method's chain of wrappers, so installing twice is harmless and two
work-arounds on one method (the commit gate and the revocation commit both wrap
``TransactionManager.on_partitions_revoked``) do not mistake each other for themselves.
Each wrapper's ``__wrapped__`` is the method it wraps: ``inspect.unwrap`` reaches Faust's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["patch_once"]

_TAG = "_rag_work_around"


def patch_once(owner: Any, name: str, wrap: Callable[[Any], Any], *, tag: str | None = None) -> None:
    """Wrap ``owner.name`` with ``wrap`` unless ``tag`` (default: ``wrap``'s qualified name) is in its chain."""
    tag = tag or f"{wrap.__module__}.{wrap.__qualname__}"
    current = getattr(owner, name)
    if tag in installed(current):
        return
    wrapper = wrap(current)
    wrapper.__wrapped__ = current
    setattr(wrapper, _TAG, tag)
    setattr(owner, name, wrapper)


def installed(method: Any) -> list[str]:
    """The work-arounds wrapped around ``method``, outermost first."""
    tags = []
    while method is not None:
        if (tag := getattr(method, _TAG, None)) is not None:
            tags.append(tag)
        method = getattr(method, "__wrapped__", None)
    return tags
