"""Publishing over HTTP (SPEC §7): PUT and DELETE a document through the worker's API, then see
the index follow; bad input is a 400 JSON error and publishes nothing."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.integration
TENANT = "docsapi"


async def test_put_and_delete_documents_over_http(pipeline: Any) -> None:
    base = f"/v1/tenants/{TENANT}/documents"
    status, body = await pipeline.api("PUT", f"{base}/guide.md", {"text": "Rotate the keys every spring."})
    assert status == 202 and body["op"] == "upsert" and body["version"] > 0, body
    auto = body["version"]
    status, body = await pipeline.api(
        "PUT", f"{base}/faq.md", {"text": "Backups run nightly at two.", "version": 5, "metadata": {"lang": "en"}}
    )
    assert (status, body["version"]) == (202, 5), body

    for bad, why in [
        ({"text": 42}, "'text' must be a string"),
        ({"text": "   "}, "text is empty"),
        ({"text": "x", "version": -1}, "'version' must be a non-negative integer"),
        ({"text": "x", "metadata": {"n": 1}}, "'metadata' must be an object of strings"),
        (["not", "an", "object"], "body must be a JSON object"),
    ]:
        status, body = await pipeline.api("PUT", f"{base}/bad.md", bad)
        assert (status, body["status"]) == (400, 400) and why in body["error"], body
    status, body = await pipeline.api("PUT", "/v1/tenants/Not_A_Tenant!/documents/x", {"text": "x"})
    assert status == 400, body

    await pipeline.wait_for(
        lambda: pipeline.holds_exactly(TENANT, {("guide.md", auto), ("faq.md", 5)}), timeout=120, what="indexing"
    )
    hits = await pipeline.search(TENANT, "when do backups run", k=1)
    assert hits[0]["doc_id"] == "faq.md" and hits[0]["metadata"] == {"lang": "en"}

    status, body = await pipeline.api("DELETE", f"{base}/guide.md")
    assert status == 202 and body["op"] == "delete" and body["version"] > auto, body
    status, body = await pipeline.api("DELETE", f"{base}/faq.md?version=4")  # older than the indexed 5: stale
    assert (status, body["version"]) == (202, 4), body
    await pipeline.wait_for(lambda: pipeline.holds_exactly(TENANT, {("faq.md", 5)}), timeout=120, what="the delete")
    assert {p["doc_id"] for p in await pipeline.points(TENANT)} == {"faq.md"}  # bad.md was never published
