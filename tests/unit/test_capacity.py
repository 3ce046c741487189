"""`rag-streams plan`: the formulas against hand-computed values, bad input as one line, and
docs/multitenancy.md holding the command's exact output (the document and the command agree)."""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path

import pytest

from rag_streams.cli import main
from rag_streams.commands.plan import size
from rag_streams.errors import CliError
from rag_streams.rules.capacity import PlanInputs, make_plan, parse_count, parse_number

DOC = Path(__file__).resolve().parents[2] / "docs" / "multitenancy.md"
GIB = 2**30


def test_int8_plan_by_hand() -> None:
    plan = make_plan(PlanInputs(tenants=100, vectors_per_tenant=10_000_000, quantization="int8"))
    assert plan.total_vectors == 1_000_000_000
    assert (plan.original_bytes, plan.quantized_bytes, plan.link_bytes) == (1536, 384, 128)
    assert plan.ram_per_vector == 1.5 * (384 + 128) == 768
    assert plan.disk_per_vector == 1.5 * (1536 + 384 + 128 + 1024) == 4608
    assert plan.ram_total == 2 * 768e9 and plan.disk_total == 2 * 4608e9
    assert plan.nodes_for_ram == math.ceil(1.536e12 / (64 * GIB * 0.75)) == 30
    assert plan.nodes_for_disk == math.ceil(9.216e12 / (1024 * GIB * 0.75)) == 12
    assert plan.nodes == 30
    assert plan.rule_of_thumb_ram == 1e9 * 384 * 4 * 1.5
    assert (plan.layout, plan.collections, plan.shards_per_tenant, plan.shards_total) == (
        "collection per tenant",
        100,
        1,
        200,
    )
    assert plan.shards_per_node == 7  # 200 shards over 30 nodes
    assert plan.bulk_rate == pytest.approx(1e9 / (7 * 86_400))  # 1,653 chunks/s
    assert (plan.embed_workers, plan.partitions) == (67, 134)
    assert plan.message_bytes == 1536 + 1024
    budget = {b.name.split(",")[0]: b.ms for b in plan.budget}
    assert budget["HNSW search"] == round(7.9 * math.log(1e7) / math.log(1e5), 1) == 11.1
    assert budget["rescoring: 10 originals read from disk"] == 1.0
    assert plan.headroom_ms == round(500 - plan.budget_used_ms, 1)


def test_none_and_binary_by_hand() -> None:
    none = make_plan(PlanInputs(100, 10_000_000))
    assert none.ram_per_vector == 1.5 * (1536 + 128) == 2496
    assert none.disk_per_vector == 1.5 * (1536 + 128 + 1024)
    assert none.nodes == none.nodes_for_ram == math.ceil(2 * 2496e9 / (48 * GIB)) == 97
    assert not any(b.name.startswith("rescoring") for b in none.budget)
    binary = make_plan(PlanInputs(100, 10_000_000, quantization="binary"))
    assert binary.quantized_bytes == 48  # 384 bits
    assert binary.ram_per_vector == 1.5 * (48 + 128) == 264
    assert binary.nodes == max(binary.nodes_for_ram, binary.nodes_for_disk) == 11


def test_shards_layouts_and_budget_follow_the_inputs() -> None:
    # 20M float32 vectors of a tenant (46.5 GiB) are more than half a 64 GiB node's 48 usable GiB
    assert make_plan(PlanInputs(10, 20_000_000)).shards_per_tenant == 2
    assert make_plan(PlanInputs(5_000, 10_000_000)).layout == "one collection, shard key per tenant"
    small = make_plan(PlanInputs(100, 50_000, replicas=3))
    assert (small.layout, small.collections, small.shards_total) == ("one collection, is_tenant index (tiered)", 1, 3)
    # 10,000 tenants of 500k int8 vectors: 5e9 x 768 B over shards of at most 24 GiB, then 2 replicas
    many = make_plan(PlanInputs(10_000, 500_000, quantization="int8"))
    assert many.shards_total == math.ceil(5e9 * 768 / (24 * GIB)) * 2 == 300
    assert small.nodes == 3  # the replicas need three nodes however small the data
    assert {b.name.split(",")[0]: b.ms for b in small.budget}["HNSW search"] == 7.9  # measured at 100k
    assert make_plan(PlanInputs(100, 10_000_000, hnsw_m=32)).link_bytes == 256


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100", 100),
        ("500k", 500_000),
        ("10M", 10_000_000),
        ("1.5B", 1_500_000_000),
        ("10_000", 10_000),
        ("2,500", 2500),
    ],
)
def test_parse_count(text: str, value: int) -> None:
    assert parse_count(text, "--x") == value


@pytest.mark.parametrize("text", ["", "ten", "0", "1.5", "-3", "10X", "1.2345k", "1e6"])
def test_parse_count_refuses(text: str) -> None:
    with pytest.raises(CliError, match="--x: expected a whole positive count"):
        parse_count(text, "--x")


def test_parse_number() -> None:
    assert parse_number("64", "--n", 1, 100) == 64.0
    assert parse_number("384", "--dim", 1, 65_536, integer=True) == 384
    for bad in ("0", "nan", "inf", "x", "3.5"):
        with pytest.raises(CliError):
            parse_number(bad, "--dim", 1, 65_536, integer=True)


def test_size() -> None:
    assert (size(768), size(32 * 2**20), size(715.3 * GIB), size(1.536e12)) == (
        "768 B",
        "32.0 MiB",
        "715.3 GiB",
        "1.40 TiB",
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tenants", "ten", "--vectors-per-tenant", "10M"], "--tenants: expected a whole positive count"),
        (["--tenants", "100", "--vectors-per-tenant", "0"], "--vectors-per-tenant: expected"),
        (["--tenants", "100", "--vectors-per-tenant", "10M", "--quantization", "pq"], "--quantization: expected"),
        (["--tenants", "100", "--vectors-per-tenant", "10M", "--dim", "0"], "--dim: expected a whole number"),
        (["--tenants", "100", "--vectors-per-tenant", "10M", "--node-ram-gib", "lots"], "--node-ram-gib: expected"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith(f"rag-streams: error: {message}")


def test_json_is_the_same_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--tenants", "100", "--vectors-per-tenant", "10M", "--quantization", "int8", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert (body["nodes"], body["partitions"], body["inputs"]["quantization"]) == (30, 134, "int8")
    assert body["budget"][2] == {"name": "query embedding, CPU, 1 question", "ms": 15.4, "source": "measured"}


def _doc_commands() -> list[tuple[list[str], str]]:
    """The document's fenced ``$ rag-streams plan ...`` blocks: (argv, the output printed under it)."""
    blocks = re.findall(r"```text\n\$ rag-streams (plan [^\n]*)\n(.*?)```", DOC.read_text(), re.S)
    return [(shlex.split(cmd), out) for cmd, out in blocks]


def test_the_document_holds_the_commands_output(capsys: pytest.CaptureFixture[str]) -> None:
    commands = _doc_commands()
    assert {tuple(argv) for argv, _ in commands} >= {
        ("plan", "--tenants", "100", "--vectors-per-tenant", "10M", "--quantization", "int8"),
        ("plan", "--tenants", "100", "--vectors-per-tenant", "10M"),
    }
    for argv, printed in commands:
        assert main(argv) == 0
        assert capsys.readouterr().out == printed, f"docs/multitenancy.md is stale for: rag-streams {shlex.join(argv)}"


def test_the_documents_table_matches_the_formulas() -> None:
    """The per-quantization summary table in the document, row by row."""
    text = DOC.read_text()
    for q in ("none", "int8", "binary"):
        plan = make_plan(PlanInputs(100, 10_000_000, quantization=q))
        row = (
            f"| {q} | {plan.ram_per_vector:,.0f} B | {plan.disk_per_vector:,.0f} B | {size(plan.ram_total)} | "
            f"{size(plan.disk_total)} | {plan.nodes} |"
        )
        assert row in text, row
