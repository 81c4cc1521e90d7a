"""The plans PostgreSQL actually runs: ``EXPLAIN (ANALYZE)`` of each query a workflow sends.

:func:`explained` listens on an engine and, just before each SELECT that reads one of the
given tables runs, runs ``EXPLAIN (ANALYZE, FORMAT JSON)`` of the same statement with the same
parameters on the same connection (inside the same transaction, so it sees what the query
sees). The workflows run unchanged: what is checked is what they send, not a copy of it.

:meth:`Plan.problems` names what makes a plan's cost grow with the table: a sequential scan of a
checked table, an index outside the expected ones, a row estimate off by more than a factor
(the planner sizes everything from it), JIT compilation. Used by tests/workflows/test_query_plans.py
and by ``bench/dispatch_scaling.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event

#: Estimated and actual rows of a plan node may differ by this factor at most (either way).
DEFAULT_ESTIMATE_FACTOR = 10.0
#: Plan nodes whose actual row count PostgreSQL does not report.
_UNCOUNTED = frozenset({"BitmapOr", "BitmapAnd"})


@dataclass
class Plan:
    """One statement and its ``EXPLAIN (ANALYZE, FORMAT JSON)`` output."""

    statement: str
    parameters: Any
    explain: dict[str, Any]

    @property
    def root(self) -> dict[str, Any]:
        return self.explain["Plan"]

    def nodes(self) -> Iterator[dict[str, Any]]:
        stack = [self.root]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.get("Plans", [])))

    def indexes(self, table: str) -> set[str]:
        """The indexes the plan reads ``table`` through (a bitmap index scan names no relation:
        it belongs to the bitmap heap scan above it)."""
        found, stack = set(), [(self.root, False)]
        while stack:
            node, under = stack.pop()
            under = under or node.get("Relation Name") == table
            if "Index Name" in node and (node.get("Relation Name") == table or
                                         (under and node["Node Type"] == "Bitmap Index Scan")):
                found.add(node["Index Name"])
            stack.extend((child, under) for child in node.get("Plans", []))
        return found

    @property
    def execution_ms(self) -> float:
        return float(self.explain["Execution Time"])

    def problems(self, *, tables: Iterable[str] = ("posts",), indexes: Iterable[str] | None = None,
                 factor: float = DEFAULT_ESTIMATE_FACTOR) -> list[str]:
        """What is wrong with this plan, one line each; empty when it is good.

        ``indexes``: the ones ``tables`` may be read through (None: any index). Row estimates
        are compared on every node that ran (rows per loop; zero counts as one row).
        """
        tables = set(tables)
        allowed = set(indexes) if indexes is not None else None
        found = []
        if "JIT" in self.explain:
            found.append("JIT compiled")
        stack = [(self.root, False)]
        while stack:
            node, limited = stack.pop()
            relation = node.get("Relation Name")
            kind = node["Node Type"]
            if relation in tables and "Seq Scan" in kind:
                found.append(f"{kind} on {relation} (no index)")
            elif relation in tables and allowed is not None and node.get("Index Name", "") not in allowed | {""}:
                found.append(f"{kind} on {relation} using {node['Index Name']}, expected one of {sorted(allowed)}")
            # Below a Limit a node stops early (its actual count is cut short); PostgreSQL
            # reports no rows for BitmapOr/BitmapAnd; a node that never ran has no count.
            if not limited and kind not in _UNCOUNTED and node.get("Actual Loops", 0) > 0:
                estimated, actual = max(node["Plan Rows"], 1.0), max(node["Actual Rows"], 1.0)
                if max(estimated / actual, actual / estimated) > factor:
                    found.append(f"{kind}{' on ' + relation if relation else ''}: estimated "
                                 f"{node['Plan Rows']:.0f} rows, actual {node['Actual Rows']:.0f} "
                                 f"(over {factor:g}x apart)")
            stack.extend((child, limited or kind == "Limit") for child in reversed(node.get("Plans", [])))
        return found

    def render(self) -> str:
        """An indented summary: node, relation and index, estimated vs actual rows, time."""
        lines: list[str] = []

        def walk(node: dict[str, Any], depth: int) -> None:
            where = ""
            if "Relation Name" in node:
                where = f" on {node['Relation Name']}"
            if "Index Name" in node:
                where += f" using {node['Index Name']}"
            cond = node.get("Index Cond") or node.get("Recheck Cond") or node.get("Filter") or ""
            lines.append(f"{'  ' * depth}-> {node['Node Type']}{where}  rows est {node['Plan Rows']:.0f} "
                         f"/ actual {node.get('Actual Rows', 0):.0f} x{node.get('Actual Loops', 0)}  "
                         f"{node.get('Actual Total Time', 0):.3f} ms" + (f"  [{_squash(cond)}]" if cond else ""))
            for child in node.get("Plans", []):
                walk(child, depth + 1)

        walk(self.root, 0)
        lines.append(f"   planning {self.explain['Planning Time']:.3f} ms, execution {self.execution_ms:.3f} ms"
                     + (", JIT" if "JIT" in self.explain else ", no JIT"))
        return "\n".join(lines)


def _squash(text: str, width: int = 110) -> str:
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass
class Explained:
    """The plans captured so far, in the order their statements ran."""

    plans: list[Plan] = field(default_factory=list)

    def reading(self, fragment: str) -> list[Plan]:
        """The plans whose statement contains ``fragment`` (case-insensitive)."""
        return [p for p in self.plans if fragment.lower() in p.statement.lower()]


@contextmanager
def explained(engine: Engine, tables: Iterable[str] = ("posts",)) -> Iterator[Explained]:
    """Capture ``EXPLAIN (ANALYZE)`` of every SELECT reading ``tables`` sent on ``engine``."""
    names = "|".join(re.escape(t) for t in tables)
    reads = re.compile(rf"\b(from|join)\s+\"?({names})\"?\b", re.I)
    out = Explained()

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if executemany or not statement.lstrip().upper().startswith("SELECT") or not reads.search(statement):
            return
        with conn.connection.dbapi_connection.cursor() as explain:
            explain.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
            raw = explain.fetchone()[0]
        document = raw if isinstance(raw, list) else json.loads(raw)
        out.plans.append(Plan(statement, parameters, document[0]))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield out
    finally:
        event.remove(engine, "before_cursor_execute", before)
