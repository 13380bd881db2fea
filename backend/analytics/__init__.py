"""Analytics and operations (issue 13): the admin dashboard's numbers, the operator's per-marketplace KPIs, CSV
exports, and the operations queues ("what needs me today")."""
