"""The task DAG, dependency levels, batches and per-warehouse caps (pure, deterministic).

Batches: within each dependency level (networkx topological generation), each warehouse's
tasks are sorted largest ``estimated_rows`` first (unknown counts last), ties by task id, and
cut into batches of ``batch_size``, so the runner starts long tables early and the run's tail
is short. Levels ascend, warehouses by name within a level.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import networkx as nx

from baselinr.config.models import MAX_WORKERS, ExecutionConfig
from baselinr.errors import PlanError
from planner.models import Batch, TaskSpec

# Built-in concurrency per warehouse type when warehouse_limits says nothing; a type not listed
# (duckdb included: one process reads it in parallel) is bounded by max_workers only. SQLite serialises
# access to its file, hence 1 (docs/parallelism.md explains each figure).
DEFAULT_CAPS = {"snowflake": 20, "postgres": 8, "mysql": 8, "redshift": 10, "bigquery": 15, "sqlite": 1}


def dependency_graph(edges: Iterable[tuple[str, Sequence[str]]]) -> nx.DiGraph:
    """DiGraph with an edge dependency -> task for each (task, depends_on); raises PlanError on a cycle.

    Nodes are inserted in the given order, so the graph (and any cycle reported) is deterministic.
    """
    graph: nx.DiGraph = nx.DiGraph()
    pairs = list(edges)
    graph.add_nodes_from(task for task, _ in pairs)
    graph.add_edges_from((dep, task) for task, deps in pairs for dep in deps)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return graph
    raise PlanError(f"dependency cycle: {format_cycle([u for u, _ in cycle])} (each task depends on the next)")


def format_cycle(nodes: list[str]) -> str:
    """'a -> b -> a' read as "depends on", starting at the smallest id.

    ``nodes`` follow graph edges (dependency -> dependent), so the chain is read backwards.
    """
    chain = list(reversed(nodes))
    start = chain.index(min(chain))
    chain = chain[start:] + chain[:start]
    return " -> ".join(chain + chain[:1])


def levels(graph: nx.DiGraph) -> dict[str, int]:
    """Task id -> topological generation (0 = no dependencies)."""
    return {node: level for level, generation in enumerate(nx.topological_generations(graph)) for node in generation}


def make_batches(tasks: Iterable[TaskSpec], level_of: Mapping[str, int], batch_size: int) -> list[Batch]:
    """Batches in execution order (level, warehouse name, size order); see the module docstring."""
    groups: dict[tuple[int, str], list[TaskSpec]] = {}
    for task in tasks:
        groups.setdefault((level_of[task.id], task.warehouse), []).append(task)
    batches: list[Batch] = []
    for (level, warehouse), group in sorted(groups.items()):
        group.sort(key=lambda t: (-(t.estimated_rows if t.estimated_rows is not None else -1), t.id))
        for n, start in enumerate(range(0, len(group), batch_size), start=1):
            batches.append(Batch(id=f"{warehouse}.L{level}.b{n}", level=level, warehouse=warehouse,
                                 tasks=tuple(t.id for t in group[start:start + batch_size])))
    return batches


def warehouse_limit(name: str, type_: str, execution: ExecutionConfig) -> tuple[int, str | None]:
    """The warehouse's own limit — warehouse_limits by name, then by type, else DEFAULT_CAPS by
    type, else MAX_WORKERS — and a warning for the plan when SQLite is left at 1 under parallelism.

    Its cap in the plan is ``min(limit, max_workers)``; ``apply --max-workers N`` runs it at
    ``min(limit, N)``.
    """
    limits = execution.warehouse_limits
    explicit = limits.get(name, limits.get(type_))
    if explicit is not None:
        return explicit, None
    warning = None
    if type_ == "sqlite" and execution.max_workers > 1:
        warning = (f"warehouse {name!r} is SQLite, which serialises access: it runs one task at a time although "
                   f"max_workers is {execution.max_workers} (set execution.warehouse_limits.{name} to override)")
    return DEFAULT_CAPS.get(type_, MAX_WORKERS), warning
