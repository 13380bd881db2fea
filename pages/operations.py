"""/admin/operations: what needs the admin today, one card per queue (its count, its first rows, and where to act on
each). The same counts are the badge on the admin nav's "Operations"."""

from __future__ import annotations

import reflex as rx

from components.layout import loaded_list, page_header, page_shell
from pages.registry import page
from state.analytics import OperationsState


def queue_row(row, action: rx.Var) -> rx.Component:
    return rx.flex(
        rx.vstack(
            rx.text(row.title, weight="medium", size="2", overflow_wrap="anywhere"),
            rx.cond(row.details != "", rx.text(row.details, size="1", color="var(--gray-11)",
                                                  overflow_wrap="anywhere")),
            spacing="0", min_width="0", flex="1",
        ),
        rx.button(rx.link(action, href=row.link, underline="none", aria_label=action + ": " + row.title), as_child=True,
                  size="1", variant="soft", flex_shrink="0"),
        gap="12px", align="center", width="100%", padding_y="8px", border_top="1px solid var(--gray-a4)",
        class_name="queue-row",
    )


def queue_card(q) -> rx.Component:
    more = q.count - q.rows.length()
    return rx.card(
        rx.vstack(
            rx.flex(
                rx.heading(q.title, as_="h2", size="3", id="queue-" + q.key),
                rx.spacer(),
                rx.badge(q.count, color_scheme=rx.cond(q.count > 0, "red", "gray"),
                         variant=rx.cond(q.count > 0, "solid", "soft"), radius="full", size="2",
                         class_name="queue-count"),
                align="center", gap="8px", width="100%",
            ),
            rx.text(q.about, size="1", color="var(--gray-11)"),
            rx.cond(
                q.rows.length() == 0,
                rx.text(q.empty, size="2", color="var(--gray-11)", padding_y="8px"),
                rx.vstack(rx.foreach(q.rows, lambda r: queue_row(r, q.action)),
                          spacing="0", width="100%"),
            ),
            rx.cond(more > 0, rx.link("See all ", q.count, " on its page", href=q.link, size="1")),
            spacing="2", width="100%",
        ),
        width="100%", min_width="0", role="region", aria_labelledby="queue-" + q.key,
        data_queue=q.key, class_name="queue-card",
    )


@page("/admin/operations", "Operations", on_load=OperationsState.load)
def operations() -> rx.Component:
    return page_shell(rx.vstack(
        page_header("Operations", "What needs you today: each row links to where you act."),
        loaded_list(OperationsState.loaded, OperationsState.queues, rx.fragment(),
                    rx.grid(rx.foreach(OperationsState.queues, queue_card),
                            columns=rx.breakpoints(initial="1", md="2"), spacing="3", width="100%",
                            align="start", id="queues")),
        spacing="4", width="100%",
    ))
