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
        ({"text": "x", "version": -1}, "'version' must be an integer from 0 to 2^63-1"),
        ({"text": "x", "metadata": {"n": 1}}, "'metadata' must be an object of strings"),
        (["not", "an", "object"], "body must be a JSON object"),
    ]:
        status, body = await pipeline.api("PUT", f"{base}/bad.md", bad)
        assert (status, body["error"]) == (400, "bad_request") and why in body["detail"], body
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


async def test_a_search_with_min_version_reads_its_own_writes(pipeline: Any) -> None:
    base, search = f"/v1/tenants/{TENANT}/documents", f"/v1/tenants/{TENANT}/search"
    status, _ = await pipeline.api("PUT", f"{base}/warmup.md", {"text": "The pipeline is warm.", "version": 1})
    assert status == 202
    await pipeline.wait_for(lambda: pipeline.holds_exactly(TENANT, {("warmup.md", 1)}), timeout=120, what="warm-up")

    text = "Tide pools are refilled twice a day by the sea."
    status, _ = await pipeline.api("PUT", f"{base}/tides.md", {"text": text, "version": 3})
    assert status == 202
    # no polling by the client: the search itself waits until version 3 is indexed
    question = {"query": "how often are tide pools refilled", "k": 3, "min_version": {"tides.md": 3}}
    status, body = await pipeline.api("POST", search, question)
    assert status == 200 and "pending" not in body and body["cached"] is False, body
    best = body["results"][0]
    assert (best["doc_id"], best["version"]) == ("tides.md", 3), body

    status, _ = await pipeline.api("DELETE", f"{base}/tides.md?version=4")
    assert status == 202
    question["min_version"] = {"tides.md": 4}  # a delete: known from the index worker's table
    status, body = await pipeline.api("POST", search, question)
    assert status == 200 and "pending" not in body, body
    assert "tides.md" not in {r["doc_id"] for r in body["results"]}, body

    question["min_version"] = {"tides.md": 9, "warmup.md": 1}  # 9 was never written: the wait runs out
    status, body = await pipeline.api("POST", search, question)
    assert status == 200 and body["pending"] == {"tides.md": 4}, body
    assert [r["doc_id"] for r in body["results"]] == ["warmup.md"]

    status, body = await pipeline.api("POST", search, {"query": "q", "min_version": {"tides.md": 0}})
    assert status == 400 and "min_version" in body["detail"], body
