"""Professional pages: leads inbox, my quotes, profile editor."""

from __future__ import annotations

import reflex as rx

from components.buttons import link_button, named_upload
from components.forms import field, field_error, field_label, form_alert, form_dialog, place_field, text_area_field
from components.layout import (
    card_stack, empty_state, list_page, loaded_list, loading_panel, page_header, page_shell,
)
from components.market import meta, photo_strip, request_summary, section, status_badge
from components.reviews import rating_badge
from pages.registry import page
from state.leads import LeadsState, MyQuotesState
from state.pros import DAY_NAMES, ProEditorState


def matched_badge(r) -> rx.Component:
    """Instant match chose this pro for the request: the badge, and the ranking's line for them."""
    return rx.cond(r.matched, rx.hstack(
        rx.badge(rx.icon("sparkles", size=12), "Matched to you", color_scheme="green", variant="solid",
                 high_contrast=True, class_name="matched-badge"),
        rx.text(r.match_why, size="1", color="var(--gray-11)"),
        spacing="2", align="center", wrap="wrap"))


def lead_card(r) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(rx.text(r.title, weight="bold", size="4"), rx.spacer(),
                      rx.cond(r.distance_km != None, rx.badge(  # noqa: E711
                          rx.cond(r.distance_km == 0, "nearby", rx.text(r.distance_km, " km away")), variant="soft")),
                      width="100%", align="center"),
            matched_badge(r),
            request_summary(r),
            rx.text(r.description, size="2", color="var(--gray-11)", white_space="pre-wrap",
                    class_name="lead-description"),
            photo_strip(r.photo_urls),
            rx.hstack(
                meta("user", r.client_name),
                rating_badge(LeadsState.client_badges[r.client_id.to_string()], who="Client rated"),
                rx.text("· posted ", r.created_at, size="2", color="var(--gray-11)"),
                rx.spacer(),
                rx.button("Decline", variant="soft", color_scheme="gray", on_click=LeadsState.decline(r.id),
                          class_name="decline-lead"),
                rx.button("Send quote", on_click=LeadsState.open_quote(r), class_name="send-quote"),
                width="100%", align="center", wrap="wrap", spacing="2",
            ),
            spacing="3", width="100%",
        ),
        width="100%", class_name="lead-card", data_title=r.title, data_matched=rx.cond(r.matched, "yes", "no"),
    )


def quote_dialog() -> rx.Component:
    errors = LeadsState.errors
    return form_dialog(
        "Send a quote",
        rx.grid(
            field("Price", "price", errors, placeholder="120.00", required=True),
            field("Estimated hours", "duration_hours", errors, type="number", default_value="2", required=True),
            columns="2", spacing="3", width="100%",
        ),
        field("Valid until", "valid_until", errors, type="date", default_value=LeadsState.default_valid_until,
              required=True),
        text_area_field("Message", "message", errors, rows="4", max_length=2000,
                        placeholder="What's included, when you can start, questions you have"),
        description=rx.dialog.description(rx.cond(LeadsState.quoting, LeadsState.quoting.title, ""),
                                          margin_bottom="12px"),
        submit=rx.button("Send quote", type="submit", loading=LeadsState.busy, id="quote-submit"),
        form_error=LeadsState.form_error, on_submit=LeadsState.send_quote, max_width="520px",
        open=LeadsState.quote_open, on_open_change=LeadsState.set_quote_open,
    )


def lead_search() -> rx.Component:
    """The keyword box: finds among the pro's own leads (title and description, typos forgiven)."""
    errors = LeadsState.errors
    return rx.form(
        rx.vstack(
            field_label("Search your leads", "q"),
            rx.hstack(
                rx.input(name="q", id="q", type="search", placeholder="e.g. leaking tap", max_length=100,
                         default_value=LeadsState.query, size="3", width="100%",
                         color_scheme=rx.cond(errors.contains("q"), "red", "gray")),
                rx.button(rx.icon("search", size=16), "Search", type="submit", size="3", id="lead-search"),
                rx.cond(LeadsState.query != "",
                        rx.button("Clear", type="button", size="3", variant="soft", color_scheme="gray",
                                  on_click=LeadsState.clear_search, id="lead-search-clear")),
                spacing="2", width="100%",
            ),
            field_error(errors, "q"),
            form_alert(LeadsState.form_error),
            spacing="1", width="100%",
        ),
        on_submit=LeadsState.search, key=LeadsState.query, role="search", width="100%", id="lead-search-form",
    )


@page("/pro/leads", "Leads", on_load=LeadsState.load)
def leads() -> rx.Component:
    none = empty_state("inbox", "No new leads", "Make sure your profile lists your categories and city; new "
                       "requests appear here.",
                       link_button("Edit my profile", href="/pro/profile", variant="soft"))
    nothing_found = empty_state("search-x", "No leads match your search",
                                "Try other words, or clear the search to see every lead.")
    return page_shell(rx.vstack(
        page_header("Leads", "Open requests in your categories and service area; those you were matched to first."),
        lead_search(),
        loaded_list(LeadsState.loaded, LeadsState.leads, rx.cond(LeadsState.query != "", nothing_found, none),
                    card_stack(LeadsState.leads, lead_card, spacing="3", id="leads")),
        quote_dialog(),
        spacing="4", width="100%",
    ))


@page("/pro/leads/[request_id]", "Lead", on_load=LeadsState.load)
def lead_detail() -> rx.Component:
    return list_page("Lead", "A request you can quote on.",
                     link_button("All leads", href="/pro/leads", variant="soft"),
                     loaded=LeadsState.loaded, items=LeadsState.leads,
                     empty=empty_state("inbox", "Not one of your leads", LeadsState.gone,
                                       link_button("See your leads", href="/pro/leads", variant="soft")),
                     shown=card_stack(LeadsState.leads, lead_card, spacing="3", id="leads"),
                     after=(quote_dialog(),))


def my_quote_row(q) -> rx.Component:
    return rx.card(
        rx.flex(
            rx.vstack(rx.text(q.request_title, weight="bold"),
                      rx.flex(meta("wallet", q.price), meta("clock", f"{q.duration_hours} h"),
                              meta("calendar-check", f"valid until {q.valid_until}"), gap="12px", wrap="wrap"),
                      spacing="1"),
            rx.spacer(),
            rx.hstack(status_badge(q.status),
                      rx.cond(MyQuotesState.chats.contains(q.request_id.to_string()),
                              link_button(rx.icon("message-circle", size=14), "Message", size="1", variant="soft",
                                          href=f"/messages/{MyQuotesState.chats[q.request_id.to_string()]}",
                                          class_name="quote-chat")),
                      rx.cond(q.status == "sent", rx.button("Withdraw", size="1", variant="soft", color_scheme="red",
                                                            on_click=MyQuotesState.withdraw(q.id),
                                                            class_name="withdraw-quote")),
                      spacing="2", align="center"),
            gap="12px", align="center", wrap="wrap", width="100%",
        ),
        width="100%", class_name="my-quote", data_title=q.request_title,
    )


@page("/pro/quotes", "My quotes", on_load=MyQuotesState.load)
def my_quotes() -> rx.Component:
    return list_page("My quotes", "Quotes you sent and where they stand.",
                     loaded=MyQuotesState.loaded, items=MyQuotesState.quotes,
                     empty=empty_state("send", "No quotes yet", "Send a quote from your leads inbox."),
                     shown=card_stack(MyQuotesState.quotes, my_quote_row))


def availability_row(day: str) -> rx.Component:
    on = ProEditorState.days_on.contains(day)
    hours = ProEditorState.pro.availability
    return rx.hstack(
        rx.box(rx.checkbox(DAY_NAMES[day], checked=on, on_change=lambda _: ProEditorState.toggle_day(day),
                           name=f"day_on_{day}", id=f"day-{day}"), width="130px", flex_shrink="0"),
        rx.cond(on, rx.hstack(
            rx.input(type="time", name=f"{day}_start", default_value=rx.cond(hours.contains(day), hours[day][0],
                                                                               "09:00"), size="1",
                     aria_label=f"{DAY_NAMES[day]} from"),
            rx.text("–"),
            rx.input(type="time", name=f"{day}_end", default_value=rx.cond(hours.contains(day), hours[day][1],
                                                                             "17:00"), size="1",
                     aria_label=f"{DAY_NAMES[day]} until"),
            spacing="2", align="center"), rx.text("Unavailable", size="2", color="var(--gray-11)")),
        spacing="3", align="center", min_height="32px",
    )


def portfolio_card() -> rx.Component:
    return section(
        "Portfolio",
        rx.grid(rx.foreach(ProEditorState.pro.portfolio, lambda i: rx.box(
            rx.image(src=i.thumb_url, width="100%", aspect_ratio="1", object_fit="cover", border_radius="8px",
                     alt=i.caption),
            rx.icon_button(rx.icon("trash-2", size=14), size="1", color_scheme="red", variant="solid",
                           position="absolute", top="6px", right="6px", aria_label="Remove this image",
                           on_click=ProEditorState.remove_image(i.id)),
            position="relative", class_name="portfolio-item")),
            columns=rx.breakpoints(initial="3", sm="4", md="6"), spacing="2", width="100%"),
        named_upload(
            "Portfolio images",
            rx.vstack(rx.icon("images", size=20, color="var(--gray-11)"),
                      rx.text("Drop images or click to choose", size="2"),
                      rx.text(f"Up to {ProEditorState.max_portfolio} images in all, "
                              f"{ProEditorState.max_image_mb} MB each", size="1", color="var(--gray-11)"),
                      align="center", spacing="1"),
            id="portfolio", multiple=True, max_files=ProEditorState.max_portfolio,
            accept={"image/png": [".png"], "image/jpeg": [".jpg", ".jpeg"], "image/webp": [".webp"],
                    "image/gif": [".gif"]},
            border="1px dashed var(--gray-a7)", border_radius="10px", padding="16px", width="100%",
        ),
        rx.foreach(rx.selected_files("portfolio"), lambda f: rx.text(f, size="1")),
        rx.button("Upload to portfolio", variant="soft", id="portfolio-upload",
                  on_click=ProEditorState.upload(rx.upload_files(upload_id="portfolio"))),
    )


@page("/pro/profile", "My professional profile", on_load=ProEditorState.load)
def pro_profile_editor() -> rx.Component:
    errors = ProEditorState.errors
    p = ProEditorState.pro
    details = rx.form(
        rx.vstack(
            section(
                "What you offer",
                field("Headline", "headline", errors, default_value=p.headline, max_length=120, required=True,
                      placeholder="Licensed plumber, 10 years of experience"),
                rx.vstack(field_label("About you", "bio"),
                          rx.text_area(name="bio", id="bio", default_value=p.bio, rows="4", width="100%",
                                       max_length=4000),
                          spacing="1", width="100%"),
                field("Skills", "skills", errors, default_value=p.skills.join(", "),
                      hint="Comma separated, e.g. leak repair, water heaters"),
                rx.vstack(
                    rx.text("Categories", size="2", weight="medium", id="categories-label"),
                    # toggle buttons: each says whether it is on (aria-pressed), reached and switched by keyboard
                    rx.flex(rx.foreach(ProEditorState.categories, lambda c: rx.button(
                        c.name, type="button", size="2", radius="full",
                        variant=rx.cond(ProEditorState.chosen.contains(c.id), "solid", "outline"),
                        aria_pressed=rx.cond(ProEditorState.chosen.contains(c.id), "true", "false"),
                        on_click=ProEditorState.toggle_category(c.id), class_name="category-chip",
                        data_slug=c.slug)), gap="8px", wrap="wrap", role="group",
                        aria_labelledby="categories-label"),
                    field_error(errors, "category_ids"),
                    spacing="2", width="100%",
                ),
            ),
            section(
                "Where and at what rate",
                rx.grid(
                    place_field("City", "city", errors, default_value=p.city, required=True),
                    field("Service radius (km)", "radius_km", errors, type="number",
                          default_value=p.radius_km.to_string()),
                    field("Hourly rate", "hourly_rate", errors, default_value=p.hourly_rate_input),
                    columns=rx.breakpoints(initial="1", sm="3"), spacing="3", width="100%",
                ),
            ),
            section("Weekly availability", *[availability_row(d) for d in DAY_NAMES],
                    rx.cond(errors.contains("availability"),
                            rx.text(errors["availability"], size="1", color="var(--red-11)"))),
            section(
                "Blocked dates",
                rx.hstack(rx.input(type="date", value=ProEditorState.blocked_input, size="2", id="blocked-day",
                                   name="blocked_day_input", aria_label="Date to block",
                                   on_change=ProEditorState.set_blocked_input),
                          rx.button("Block date", type="button", variant="soft", size="2",
                                    on_click=ProEditorState.add_blocked), spacing="2"),
                rx.flex(rx.foreach(ProEditorState.blocked, lambda d: rx.badge(
                    d, rx.icon_button(rx.icon("x", size=12), size="1", variant="ghost", color_scheme="gray",
                                      type="button", on_click=ProEditorState.remove_blocked(d),
                                      aria_label=f"Unblock {d}"),
                    variant="soft", color_scheme="gray", size="2")), gap="8px", wrap="wrap"),
            ),
            form_alert(ProEditorState.form_error),
            rx.button("Save profile", type="submit", size="3", id="pro-save"),
            spacing="4", width="100%",
        ),
        on_submit=ProEditorState.save, key=ProEditorState.form_key, id="pro-form",
    )
    return page_shell(rx.cond(
        ProEditorState.pro,
        rx.vstack(
            page_header("My professional profile", "What clients see on your public page.",
                        link_button("View public page", href=f"/pros/{p.user_id}", variant="soft")),
            details, portfolio_card(),
            spacing="4", width="100%", max_width="860px",
        ),
        loading_panel(),
    ))
