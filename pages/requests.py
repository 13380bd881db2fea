"""Client pages: my requests, post a request, compare quotes."""

from __future__ import annotations

import reflex as rx

from components.buttons import link_button, named_upload
from components.forms import field, field_error, field_label, form_alert, place_field, text_area_field
from components.layout import card_stack, empty_state, list_page, loading_panel, page_header, page_shell
from components.market import card_link, meta, photo_strip, request_summary, section, status_badge, verified_badge
from pages.registry import page
from state.requests import MyRequestsState, NewRequestState, RequestDetailState


def request_card(r) -> rx.Component:
    return card_link(
        rx.vstack(
            rx.hstack(rx.text(r.title, weight="bold", size="4"), rx.spacer(), status_badge(r.status),
                      width="100%", align="center"),
            request_summary(r),
            rx.hstack(rx.icon("message-square-quote", size=14),
                      rx.text(r.quote_count, " quote(s)", size="2", weight="medium"),
                      rx.text("· posted ", r.created_at, size="2", color="var(--gray-11)"),
                      spacing="1", align="center"),
            spacing="2", width="100%",
        ),
        f"/requests/{r.id}", "request-card",
    )


@page("/requests", "My requests", on_load=MyRequestsState.load)
def my_requests() -> rx.Component:
    return list_page("My requests", "Jobs you posted and the quotes they received.",
                     link_button(rx.icon("plus", size=16), "Post a request", href="/requests/new", id="new-request"),
                     loaded=MyRequestsState.loaded, items=MyRequestsState.requests,
                     empty=empty_state("clipboard-list", "No requests yet",
                                       "Describe a job and local professionals will send you quotes.",
                                       link_button("Post your first request", href="/requests/new")),
                     shown=card_stack(MyRequestsState.requests, request_card, spacing="3"))


@page("/requests/new", "Post a request", on_load=NewRequestState.load)
def new_request() -> rx.Component:
    errors = NewRequestState.errors
    return page_shell(rx.vstack(
        page_header("Post a request", "The more detail you give, the better the quotes."),
        rx.card(
            rx.form(
                rx.vstack(
                    rx.vstack(
                        field_label("Category", "category"),
                        rx.select.root(
                            rx.select.trigger(placeholder="Choose a category", width="100%", id="category"),
                            rx.select.content(rx.foreach(NewRequestState.categories, lambda c: rx.select.item(
                                c.name, value=c.id.to_string()))),
                            value=NewRequestState.category_choice, on_change=NewRequestState.set_category_choice,
                        ),
                        field_error(errors, "category_id"),
                        spacing="1", width="100%",
                    ),
                    field("Title", "title", errors, placeholder="e.g. Fix a leaking kitchen tap", max_length=120,
                          required=True),
                    text_area_field("Description", "description", errors, rows="5", max_length=4000,
                                    placeholder="What needs doing, access, materials, anything a pro should know"),
                    place_field("City", "city", errors, required=True),
                    rx.grid(
                        field("Budget from", "budget_min", errors, placeholder="50", hint="Optional"),
                        field("Budget up to", "budget_max", errors, placeholder="150", hint="Optional"),
                        field("Preferred start", "preferred_start", errors, type="date"),
                        field("Preferred end", "preferred_end", errors, type="date"),
                        columns=rx.breakpoints(initial="1", sm="2"), spacing="3", width="100%",
                    ),
                    rx.vstack(
                        rx.text("Photos (optional)", size="2", weight="medium"),
                        named_upload(
                            "Photos (optional)",
                            rx.vstack(rx.icon("image-plus", size=20, color="var(--gray-11)"),
                                      rx.text("Drop photos or click to choose", size="2"),
                                      rx.text(f"Up to {NewRequestState.max_photos} images, "
                                              f"{NewRequestState.max_image_mb} MB each", size="1",
                                              color="var(--gray-11)"),
                                      align="center", spacing="1"),
                            id="request-photos", multiple=True, max_files=NewRequestState.max_photos,
                            accept={"image/png": [".png"], "image/jpeg": [".jpg", ".jpeg"],
                                    "image/webp": [".webp"], "image/gif": [".gif"]},
                            border="1px dashed var(--gray-a7)", border_radius="10px", padding="16px", width="100%",
                        ),
                        rx.foreach(rx.selected_files("request-photos"), lambda f: rx.text(f, size="1")),
                        field_error(errors, "photos"),
                        spacing="1", width="100%",
                    ),
                    form_alert(NewRequestState.form_error),
                    rx.button("Post request", type="submit", size="3", loading=NewRequestState.busy,
                              id="request-submit"),
                    spacing="4", width="100%",
                ),
                on_submit=[NewRequestState.stash,
                           NewRequestState.create(rx.upload_files(upload_id="request-photos"))],
                id="request-form",
            ),
            size="3", width="100%", max_width="760px",
        ),
        spacing="4", width="100%",
    ))


def quote_card(q) -> rx.Component:
    open_request = RequestDetailState.request.status == "open"
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.avatar(src=q.pro_avatar_url, fallback=q.pro_name.to(str)[0:1], size="3", radius="full"),
                rx.vstack(rx.link(q.pro_name, href=f"/pros/{q.pro_id}", weight="bold"),
                          rx.cond(q.pro_verified, verified_badge()), spacing="1"),
                rx.spacer(), status_badge(q.status), width="100%", align="start",
            ),
            rx.text(q.price, size="7", weight="bold", class_name="quote-price"),
            rx.flex(meta("clock", f"{q.duration_hours} h"), meta("calendar-check", f"valid until {q.valid_until}"),
                    gap="12px", wrap="wrap"),
            rx.text(q.message, size="2", color="var(--gray-11)", white_space="pre-wrap"),
            rx.cond(RequestDetailState.chats.contains(q.pro_id.to_string()),
                    rx.link(rx.hstack(rx.icon("message-circle", size=14), rx.text("Message", size="2"), spacing="1"),
                            href=f"/messages/{RequestDetailState.chats[q.pro_id.to_string()]}",
                            class_name="quote-chat")),
            rx.spacer(),
            rx.cond(
                open_request & (q.status == "sent") & ~q.expired,
                rx.alert_dialog.root(
                    rx.alert_dialog.trigger(rx.button("Accept quote", width="100%", class_name="accept-quote")),
                    rx.alert_dialog.content(
                        rx.alert_dialog.title("Accept this quote?"),
                        rx.alert_dialog.description(
                            rx.text(q.pro_name, " will do the job for ", q.price,
                                    ". The other quotes are declined. You pay into escrow next.")),
                        rx.hstack(
                            rx.alert_dialog.cancel(rx.button("Not yet", variant="soft", color_scheme="gray")),
                            rx.alert_dialog.action(rx.button("Accept", on_click=RequestDetailState.accept(q.id),
                                                             class_name="confirm-accept")),
                            spacing="3", justify="end", margin_top="16px",
                        ),
                    ),
                ),
                rx.cond(q.expired, rx.text("This quote has expired.", size="1", color="var(--gray-11)")),
            ),
            spacing="3", height="100%", width="100%",
        ),
        width="100%", class_name="quote-card",
    )


@page("/requests/[request_id]", "Request", on_load=RequestDetailState.load)
def request_detail() -> rx.Component:
    r = RequestDetailState.request
    body = rx.vstack(
        page_header(r.title, "",
                    rx.cond(r.status == "open",
                            rx.button("Close request", variant="soft", color_scheme="gray",
                                      on_click=RequestDetailState.close, id="close-request")),
                    rx.cond(r.order_id, link_button("Go to order", href=f"/orders/{r.order_id}"))),
        rx.cond(r.status == "open",
                rx.callout(r.match_note, icon="send", color_scheme="green", width="100%", id="match-note")),
        section("Details",
                rx.hstack(status_badge(r.status), rx.text("expires ", r.expires_at, size="1",
                                                           color="var(--gray-11)"), align="center"),
                request_summary(r),
                rx.text(r.description, white_space="pre-wrap", size="2"),
                photo_strip(r.photo_urls)),
        rx.heading("Quotes", as_="h2", size="5", margin_top="8px"),
        rx.cond(
            RequestDetailState.quotes.length() == 0,
            empty_state("hourglass", "No quotes yet", "Professionals near you see your request now. "
                        "Quotes usually arrive within a day."),
            rx.grid(rx.foreach(RequestDetailState.quotes, quote_card),
                    columns=rx.breakpoints(initial="1", sm="2", lg="3"), spacing="3", width="100%",
                    id="quotes"),
        ),
        spacing="4", width="100%",
    )
    return page_shell(rx.cond(
        RequestDetailState.loaded,
        rx.cond(RequestDetailState.request, body,
                empty_state("search-x", "Request not found", "It may have been removed, or it isn't yours.")),
        loading_panel(),
    ))
