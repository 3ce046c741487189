"""docs/tiers.md (issue 14, item 6) names the three tiers, is linked from the README, and every
setting it names is real, with the default it quotes."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from rag_streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "tiers.md"
#: settings another branch of issue 14 adds (fallback retrieval); checked like the rest once they exist
DEFAULTS = {f.metadata["env"]: f.default for f in fields(Settings)}


def test_the_readme_links_the_tiers_page() -> None:
    assert "(docs/tiers.md)" in (ROOT / "README.md").read_text()


def test_it_names_each_tier_its_store_and_how_it_is_rebuilt() -> None:
    text = DOC.read_text()
    for heading in ("## Hot: Redis answers", "## Hot: the fallback index", "## Warm: Qdrant", "## Cold: the compacted"):
        assert heading in text
    assert "`rag.documents.latest`" in text and "compact" in text
    for command in ("verify --tenant T --repair", "reindex --tenant T", "restore --from DIR"):
        assert command in text
    assert text.count("*Rebuilt") >= 4  # one paragraph per tier


def test_the_settings_it_names_are_real_and_their_quoted_defaults_true() -> None:
    text = DOC.read_text()
    named = set(re.findall(r"`(RAG_[A-Z0-9_]+)`", text))
    assert {"RAG_CACHE_TTL", "RAG_HEALTH_INTERVAL_S", "RAG_QDRANT_PATH"} <= named
    assert named <= set(DEFAULTS), sorted(named - set(DEFAULTS))
    quoted = re.findall(r"`(RAG_[A-Z0-9_]+)`\s*\((?:default )?([0-9][0-9,]*)", text)
    assert ("RAG_CACHE_TTL", "300") in quoted and ("RAG_HEALTH_INTERVAL_S", "60") in quoted
    for name, value in quoted:
        assert name in DEFAULTS, name
        if name in DEFAULTS:
            assert float(DEFAULTS[name]) == float(value.replace(",", "")), name
