"""One writer of orders: only backend/orders/service.py (OrderService) creates, changes or deletes an Order or an
OrderEvent. The import contract `one-writer` keeps the order tables inside backend.orders; this keeps the writes
inside the one module of orders that owns the lifecycle (quotes, facts and views only read)."""

from __future__ import annotations

import ast
from pathlib import Path

BACKEND = Path(__file__).resolve().parents[2] / "backend"
WRITER = BACKEND / "orders" / "service.py"
ORDER_TABLES = {"Order", "OrderEvent"}


def order_writes(path: Path) -> list[str]:
    """Constructions of Order/OrderEvent, UPDATE/DELETE statements on them, and assignments to an `order.` field."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name in ORDER_TABLES:
                found.append(f"{path.name}:{node.lineno} builds {name}")
            if name in ("update", "delete") and any(isinstance(a, ast.Name) and a.id in ORDER_TABLES
                                                    for a in node.args):
                found.append(f"{path.name}:{node.lineno} {name}s order rows")
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Attribute) and isinstance(leaf.value, ast.Name) and leaf.value.id == "order":
                    found.append(f"{path.name}:{node.lineno} sets order.{leaf.attr}")
    return found


def test_only_the_order_service_writes_orders():
    outside = [w for path in sorted(BACKEND.rglob("*.py")) if path != WRITER for w in order_writes(path)]
    assert outside == []


def test_the_check_sees_the_writes_of_the_order_service():
    """The scan finds what it looks for: the writer itself builds orders and events and moves their state."""
    writes = " ".join(order_writes(WRITER))
    assert "builds Order" in writes and "builds OrderEvent" in writes and "sets order.state" in writes
