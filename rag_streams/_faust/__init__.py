"""Every Faust/aiokafka work-around of rag-streams, in one package.

``registry.py`` lists them (number, what they patch, upstream report, pinning test, verified
versions); :func:`install_all` installs the method patches in their one correct order, and
:func:`check_versions` refuses Faust, aiokafka or mode versions they were not verified on.
Importing this package imports no Faust code and patches nothing.
"""

from __future__ import annotations

from importlib import metadata

from rag_streams._faust.registry import INSTALL_ORDER, VERIFIED, by_number
from rag_streams.errors import CliError

__all__ = ["check_versions", "install_all", "verified_versions"]


def install_all() -> None:
    """Install every method patch, in :data:`~rag_streams._faust.registry.INSTALL_ORDER` (idempotent)."""
    for number in INSTALL_ORDER:
        by_number(number).installer()()


def verified_versions() -> str:
    """'faust-streaming 0.15.3, aiokafka 0.14.0, mode-streaming 0.7.1' (or 'a|b' where several are)."""
    return ", ".join(f"{pkg} {'|'.join(versions)}" for pkg, versions in VERIFIED.items())


def check_versions(allow_unverified: bool) -> list[str]:
    """The installed packages whose version the work-arounds were not verified on ("pkg X").

    Raises :class:`CliError` (one line, naming the verified versions) if there is any and
    ``allow_unverified`` (RAG_ALLOW_UNVERIFIED_FAUST) is false.
    """
    unverified = []
    for pkg, versions in VERIFIED.items():
        try:
            installed = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            installed = "(not installed)"
        if installed not in versions:
            unverified.append(f"{pkg} {installed}")
    if unverified and not allow_unverified:
        raise CliError(
            f"{', '.join(unverified)} installed, but the Faust work-arounds are verified only on "
            f"{verified_versions()}: install with `pip install -c constraints.txt .`, "
            "or set RAG_ALLOW_UNVERIFIED_FAUST=true to run anyway"
        )
    return unverified


def docs_table() -> str:
    """The Markdown table of docs/faust-workarounds.md, from the registry (a unit test compares them)."""
    from rag_streams._faust.registry import WORK_AROUNDS

    rows = [
        "| # | what | patches | upstream | pinned by | verified on | depends on |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for w in WORK_AROUNDS:
        rows.append(
            f"| {w.number} | {w.title} ({w.where}) | {', '.join(f'`{p}`' for p in w.patches)} | {w.upstream} | "
            f"{'<br>'.join(f'`{t}`' for t in w.pinned_by)} | {', '.join(f'{p} {v}' for p, v in w.verified)} | "
            f"{', '.join(map(str, w.depends_on)) or '-'} |"
        )
    return "\n".join(rows) + "\n"
