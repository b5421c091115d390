"""Reading the local trace store (`var/traces/<service>.jsonl`) and drawing a trace as a tree."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path


def load_spans(trace_dir: Path) -> list[dict]:
    spans = []
    for path in sorted(trace_dir.glob("*.jsonl")):
        for line in path.read_text(errors="replace").splitlines():
            if line.strip():
                try:
                    spans.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line being written right now
    return spans


def last_request_trace(spans: list[dict]) -> str | None:
    """The newest trace that started with a clinic's request (a SERVER span with no parent)
    and travelled on through the bus; reads alone (no consumer) only when there is no other."""
    roots = [s for s in spans if s["kind"] == "SERVER" and not s.get("parent_span_id")]
    if not roots:
        return None
    travelled = {s["trace_id"] for s in spans if s["kind"] == "CONSUMER"}
    onward = [r for r in roots if r["trace_id"] in travelled]
    return max(onward or roots, key=lambda s: s["start_ns"])["trace_id"]


def _noise(span: dict) -> bool:
    """Database statements make the tree hard to read (their time shows in their parents), and
    so do the ASGI send/receive steps. Other CLIENT spans stay: a reminder's delivery is one."""
    attributes = span.get("attributes") or {}
    database = "db.system" in attributes or "db.system.name" in attributes
    return database or span["name"].endswith((" http send", " http receive"))


def render_tree(spans: list[dict], trace_id: str, *, include_db: bool = False) -> str:
    everything = {s["span_id"]: s for s in spans if s["trace_id"] == trace_id}
    hidden = set() if include_db else {i for i, s in everything.items() if _noise(s)}
    mine = [s for i, s in everything.items() if i not in hidden]
    if not mine:
        return f"no spans for trace {trace_id}"

    def shown_parent(span: dict) -> str | None:
        """The nearest ancestor that is drawn, so hiding a span never splits the tree."""
        parent = span.get("parent_span_id")
        while parent in hidden:
            parent = everything[parent].get("parent_span_id")
        return parent if parent in everything else None

    children: dict[str | None, list[dict]] = defaultdict(list)
    for s in mine:
        children[shown_parent(s)].append(s)
    t0 = min(s["start_ns"] for s in mine)
    lines = [f"trace {trace_id}"]

    def walk(span: dict, depth: int) -> None:
        start = (span["start_ns"] - t0) / 1e6
        took = (span["end_ns"] - span["start_ns"]) / 1e6
        status = "" if span["status"] != "ERROR" else "  ERROR"
        lines.append(
            f"{'  ' * depth}├─ [{span['service']}] {span['name']} ({span['kind'].lower()}) +{start:.1f} ms, {took:.1f} ms{status}"
        )
        for child in sorted(children[span["span_id"]], key=lambda c: c["start_ns"]):
            walk(child, depth + 1)

    for root in sorted(children[None], key=lambda s: s["start_ns"]):
        walk(root, 0)
    total = (max(s["end_ns"] for s in mine) - t0) / 1e6
    services = sorted({s["service"] for s in mine})
    lines.append(f"{len(mine)} spans across {', '.join(services)} in {total:.1f} ms")
    return "\n".join(lines)
