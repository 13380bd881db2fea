"""Ratings and reviews: the order page's review card and the profile's reviews (used by pages/orders.py and
pages/pros.py), "My reviews" (/reviews) and the admin's queue of reported reviews (/admin/reviews)."""

from __future__ import annotations

import reflex as rx

from components.forms import form_alert, form_dialog, text_area_field
from components.layout import card_stack, empty_state, list_page, loading_panel, page_header, page_shell
from components.market import card_link, meta, section
from components.reviews import rating_summary, review_card, star_picker
from pages.registry import page
from state.reviews import (REASON_MAX, REPLY_MAX, SORTS, SUB_RATINGS, TEXT_MAX, MyReviewsState, OrderReviewsState,
                           ProReviewsState, ReviewModerationState)


def not_published_badge() -> rx.Component:
    return rx.badge(rx.icon("eye-off", size=12), "Not published yet", color_scheme="amber", variant="soft",
                    radius="full", class_name="review-status")


def reply_field(errors: rx.Var) -> rx.Component:
    return text_area_field("Your public reply", "reply", errors, rows="3", max_length=REPLY_MAX,
                           placeholder="Thank them, or say what happened from your side")


# ---------------------------------------------------------------------------------------------- the order page


def review_form() -> rx.Component:
    """Stars (and for the client the four sub-ratings) and the text; filled with the author's review when editing."""
    r = OrderReviewsState.reviews
    mine = r.mine
    errors = OrderReviewsState.errors
    return rx.form(
        rx.vstack(
            star_picker("Overall rating", "stars", errors, mine.stars),
            rx.cond(r.with_subratings, rx.vstack(
                rx.text("How was the professional on each of these? (optional)", size="2", color="var(--gray-11)"),
                rx.grid(*[star_picker(label, key, errors, mine[key], size=22) for key, label in SUB_RATINGS],
                        columns=rx.breakpoints(initial="1", sm="2"), spacing="3", width="100%"),
                spacing="2", width="100%")),
            text_area_field("Your review", "text", errors, rows="4", max_length=TEXT_MAX,
                            default_value=rx.cond(mine, mine.text, ""),
                            placeholder=rx.cond(r.with_subratings, "How did the job go? What should other clients "
                                                "know?", "How was it to work with this client?")),
            form_alert(OrderReviewsState.form_error),
            rx.hstack(
                rx.cond(OrderReviewsState.editing,
                        rx.button("Cancel", type="button", variant="soft", color_scheme="gray",
                                  on_click=OrderReviewsState.cancel_edit)),
                rx.button(rx.cond(mine, "Save changes", "Submit review"), type="submit",
                          loading=OrderReviewsState.busy, id="review-submit"),
                justify="end", spacing="3", width="100%",
            ),
            spacing="4", width="100%",
        ),
        on_submit=OrderReviewsState.submit, key=OrderReviewsState.form_key, id="review-form", width="100%",
    )


def withdraw_button() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(rx.button("Withdraw", variant="soft", color_scheme="red", size="2",
                                          id="review-withdraw")),
        rx.alert_dialog.content(
            rx.alert_dialog.title("Withdraw your review?"),
            rx.alert_dialog.description("It is deleted. You can write a new one until the window closes."),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Keep it", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(rx.button("Withdraw", color_scheme="red", on_click=OrderReviewsState.withdraw,
                                                 id="confirm-withdraw")),
                spacing="3", justify="end", margin_top="16px",
            ),
        ),
    )


def my_pending_review() -> rx.Component:
    """The author's submitted review before publication: what it says, and (while the window is open) edit or
    withdraw it."""
    r = OrderReviewsState.reviews
    return review_card(
        r.mine,
        rx.cond(r.can_review, rx.fragment(
            withdraw_button(),
            rx.button("Edit", variant="soft", size="2", on_click=OrderReviewsState.start_edit, id="review-edit"))),
        heading=rx.hstack(rx.text("Your review of ", r.other_name, weight="bold"), not_published_badge(),
                          spacing="2", align="center", wrap="wrap"),
        subratings=SUB_RATINGS,
    )


def write_card() -> rx.Component:
    """Before publication: the blind rule and the deadline, then the form, or the author's pending review."""
    r = OrderReviewsState.reviews
    mine = r.mine
    return section(
        "Leave a review",
        rx.cond(r.can_review, rx.vstack(
            meta("calendar-clock", rx.text("Open until ", rx.el.time(r.deadline, date_time=r.deadline_iso,
                                                                     id="review-deadline"))),
            rx.callout(r.blind_note, icon="eye-off", color_scheme="blue", size="1", width="100%", id="blind-note"),
            spacing="2", width="100%")),
        rx.cond(
            mine & ~OrderReviewsState.editing, my_pending_review(),
            rx.cond(r.can_review, review_form(),
                    rx.text("The time to review this order ended on ", r.deadline, ".", size="2",
                            color="var(--gray-11)", id="review-closed")),
        ),
        id="review-card",
    )


def reply_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            reply_field(OrderReviewsState.errors),
            form_alert(OrderReviewsState.form_error),
            rx.hstack(rx.button("Post reply", type="submit", loading=OrderReviewsState.busy, id="reply-submit"),
                      justify="end", width="100%"),
            spacing="2", width="100%",
        ),
        on_submit=OrderReviewsState.reply, key=OrderReviewsState.form_key, width="100%", id="reply-form",
    )


def published_reviews() -> rx.Component:
    """After publication: the other party's review of the caller (with the one reply they may post) and theirs."""
    r = OrderReviewsState.reviews
    theirs, mine = r.theirs, r.mine
    return section(
        "Reviews",
        rx.cond(theirs, review_card(
            theirs,
            heading=rx.text(theirs.author_name, "'s review of you", weight="bold"), subratings=SUB_RATINGS,
            footer=rx.cond((theirs.reply == "") & ~theirs.hidden, reply_form()),
        )),
        rx.cond(mine & (mine.status == "published"),
                review_card(mine, heading=rx.text("Your review of ", r.other_name, weight="bold"),
                            subratings=SUB_RATINGS)),
        rx.cond(~theirs, rx.text(r.other_name, " did not review this order.", size="2", color="var(--gray-11)")),
        id="order-reviews",
    )


def order_reviews(order_id: rx.Var) -> rx.Component:
    """The order page's reviews, for its client and professional once the order can be reviewed (and only those of
    `order_id`: the state may still hold the last order's until its load has run)."""
    r = OrderReviewsState.reviews
    published = r.mine & (r.mine.status == "published")
    return rx.cond(
        r & (r.order_id == order_id) & r.reviewable & (r.my_role != ""),
        rx.vstack(
            # before publication (or once the window closed with no review at all): the card to write one
            rx.cond(~published & (r.can_review | r.mine | ~r.theirs), write_card()),
            rx.cond(published | r.theirs, published_reviews()),
            spacing="3", width="100%",
        ),
    )


# ------------------------------------------------------------------------------ a professional's public profile


def report_button(r) -> rx.Component:
    """Anyone but the review's author may report it (a visitor is asked to log in first)."""
    return rx.cond(r.author_id != ProReviewsState.user_id, rx.button(
        rx.icon("flag", size=12), "Report", size="1", variant="ghost", color_scheme="gray",
        on_click=ProReviewsState.open_report(r.id), aria_label=f"Report the review by {r.author_name}",
        class_name="report-review"))


def report_dialog() -> rx.Component:
    errors = ProReviewsState.errors
    return form_dialog(
        "Report this review",
        text_area_field("What is wrong with it?", "reason", errors, rows="3", max_length=REASON_MAX,
                        placeholder="For example: it is about another job, or it is abusive"),
        description=rx.dialog.description("The marketplace's team reads every report and may hide the review.",
                                          margin_bottom="12px"),
        submit=rx.button("Send report", type="submit", loading=ProReviewsState.busy, id="report-submit"),
        form_error=ProReviewsState.form_error, on_submit=ProReviewsState.report, max_width="480px",
        open=ProReviewsState.report_id != 0, on_open_change=ProReviewsState.set_report_open,
    )


def pager() -> rx.Component:
    listing = ProReviewsState.listing
    return rx.cond(listing.pages > 1, rx.el.nav(
        rx.hstack(
            rx.button(rx.icon("chevron-left", size=14), "Previous", variant="soft", size="2",
                      disabled=listing.page <= 1, on_click=ProReviewsState.go_to_page(listing.page - 1),
                      id="reviews-previous"),
            rx.text("Page ", listing.page, " of ", listing.pages, size="2", color="var(--gray-11)",
                    id="reviews-page"),
            rx.button("Next", rx.icon("chevron-right", size=14), variant="soft", size="2",
                      disabled=listing.page >= listing.pages, on_click=ProReviewsState.go_to_page(listing.page + 1),
                      id="reviews-next"),
            spacing="3", align="center", justify="center", width="100%",
        ),
        aria_label="Pages of reviews", style={"width": "100%"},
    ))


def sort_control() -> rx.Component:
    return rx.hstack(
        rx.text("Sort by", size="2", color="var(--gray-11)", id="review-sort-label"),
        rx.segmented_control.root(
            *[rx.segmented_control.item(label, value=value) for value, label in SORTS],
            value=ProReviewsState.sort, on_change=ProReviewsState.set_sort, size="1",
            aria_labelledby="review-sort-label", id="review-sort",
        ),
        spacing="2", align="center", wrap="wrap",
    )


def profile_reviews(pro_id: rx.Var) -> rx.Component:
    """The profile's "Reviews" of the professional `pro_id`: the summary, one page of reviews in the chosen order
    with their replies, reporting one. A spinner until they are loaded (the state may hold another profile's)."""
    s = ProReviewsState.summary
    listing = ProReviewsState.listing
    return section(
        "Reviews",
        rx.cond(~s | (s.subject_id != pro_id), rx.center(rx.spinner(), width="100%", padding="16px"), rx.cond(
            s.count > 0,
            rx.vstack(
                rating_summary(s, ProReviewsState.whole_stars, ProReviewsState.bars, ProReviewsState.sub_averages),
                rx.separator(size="4"),
                sort_control(),
                card_stack(listing.reviews, lambda r: review_card(r, report_button(r), subratings=SUB_RATINGS),
                           spacing="3", id="review-list"),
                pager(),
                spacing="4", width="100%",
            ),
            rx.text("No reviews yet.", size="2", color="var(--gray-11)", id="no-reviews"),
        )),
        report_dialog(),
        id="reviews",
    )


# ---------------------------------------------------------------------------------------------- "My reviews"


def pending_card(p) -> rx.Component:
    return card_link(
        rx.flex(
            rx.vstack(rx.text(p.title, weight="bold"),
                      meta("user", p.other_name),
                      spacing="1"),
            rx.spacer(),
            rx.vstack(rx.text("Review by ", p.deadline, size="2", weight="medium"),
                      rx.text("Write a review →", size="2", color="var(--accent-11)"),
                      spacing="1", align=rx.breakpoints(initial="start", sm="end")),
            gap="12px", align="center", wrap="wrap", width="100%",
        ),
        f"/orders/{p.order_id}", "pending-review",
    )


def order_link(r) -> rx.Component:
    return rx.link("Order #", r.order_id, href=f"/orders/{r.order_id}", size="1")


def given_card(r) -> rx.Component:
    return review_card(
        r, heading=rx.hstack(rx.text("Your review of ", r.subject_name, weight="bold"),
                             rx.cond(r.status != "published", not_published_badge()), order_link(r),
                             spacing="2", align="center", wrap="wrap"),
        subratings=SUB_RATINGS,
    )


def received_card(r) -> rx.Component:
    can_reply = (r.reply == "") & ~r.hidden & (r.status == "published")
    return review_card(
        r, rx.cond(can_reply, rx.button(rx.icon("reply", size=12), "Reply", size="1", variant="soft",
                                        on_click=MyReviewsState.open_reply(r.id), class_name="reply-review",
                                        aria_label=f"Reply to {r.author_name}")),
        heading=rx.hstack(rx.text("From ", r.author_name, weight="bold"), order_link(r), spacing="2",
                          align="center", wrap="wrap"),
        subratings=SUB_RATINGS,
    )


def reply_dialog() -> rx.Component:
    return form_dialog(
        "Reply to a review",
        reply_field(MyReviewsState.errors),
        description=rx.dialog.description("Your reply shows under the review, for everyone. You can reply once.",
                                          margin_bottom="12px"),
        submit=rx.button("Post reply", type="submit", loading=MyReviewsState.busy, id="my-reply-submit"),
        form_error=MyReviewsState.form_error, on_submit=MyReviewsState.reply, max_width="480px",
        open=MyReviewsState.replying_id != 0, on_open_change=MyReviewsState.set_reply_open,
    )


def listed(items: rx.Var, card, empty: str, list_id: str) -> rx.Component:
    return rx.cond(items.length() == 0, rx.text(empty, size="2", color="var(--gray-11)"),
                   card_stack(items, card, spacing="3", id=list_id))


@page("/reviews", "My reviews", on_load=MyReviewsState.load)
def my_reviews() -> rx.Component:
    m = MyReviewsState.mine
    return page_shell(rx.cond(m, rx.vstack(
        page_header("My reviews", "Orders waiting for your review, the reviews you gave and those of you."),
        section("Waiting for your review",
                rx.text("Each review stays hidden until the other side reviews you too, or until the deadline; "
                        "then both are published at once.", size="2", color="var(--gray-11)"),
                listed(m.pending, pending_card, "Nothing to review right now.", "pending-reviews")),
        section("Reviews of you", listed(m.received, received_card, "No reviews of you yet.", "received-reviews")),
        section("Reviews you gave", listed(m.given, given_card, "You have not reviewed anyone yet.",
                                           "given-reviews")),
        reply_dialog(),
        spacing="4", width="100%",
    ), loading_panel()))


# ------------------------------------------------------------------------------------------ the admin's queue


def reported_card(rr) -> rx.Component:
    review = rr.review
    hide = rx.button(rx.icon("eye-off", size=14), "Hide", size="2", color_scheme="red", variant="soft",
                     on_click=ReviewModerationState.ask(review.id, "hide"), class_name="hide-review")
    restore = rx.button(rx.icon("eye", size=14), "Restore", size="2", variant="soft",
                        on_click=ReviewModerationState.ask(review.id, "restore"), class_name="restore-review")
    return review_card(
        review, rx.cond(review.hidden, restore, hide),
        heading=rx.text(review.author_name, " on ", review.subject_name, weight="bold"),
        subratings=SUB_RATINGS,
        footer=rx.box(
            rx.flex(rx.text("Reported ", rr.reports, rx.cond(rr.reports == 1, " time", " times"), " · last on ",
                            rr.last_reported_at, size="2", weight="medium"),
                    rx.cond(rr.open_reports > 0,
                            rx.badge(rr.open_reports, " open", color_scheme="amber", variant="soft", radius="full"),
                            rx.badge("answered", color_scheme="gray", variant="soft", radius="full")),
                    gap="4px 8px", wrap="wrap", align="center"),
            rx.el.ul(rx.foreach(rr.reasons, lambda reason: rx.el.li(rx.text(reason, size="2"))),
                     style={"margin": "4px 0 0", "paddingLeft": "20px", "listStyle": "disc"}),
            background="var(--amber-2)", border="1px solid var(--amber-6)", border_radius="8px", padding="10px 12px",
            width="100%", class_name="report-reasons",
        ),
    )


def moderation_dialog() -> rx.Component:
    hide = ReviewModerationState.moderating_action == "hide"
    return form_dialog(
        rx.cond(hide, "Hide this review", "Restore this review"),
        text_area_field("Reason", "reason", ReviewModerationState.errors, rows="3", max_length=REASON_MAX,
                        placeholder="Kept in the audit trail; the author and the reviewed person see it"),
        description=rx.dialog.description(
            rx.cond(hide, "A hidden review leaves the profile and the ratings. Its author and the person it is "
                          "about still see it, marked hidden, with your reason.",
                    "The review shows on the profile again and counts in the ratings."),
            margin_bottom="12px"),
        submit=rx.button(rx.cond(hide, "Hide review", "Restore review"), type="submit",
                         color_scheme=rx.cond(hide, "red", "accent"), loading=ReviewModerationState.busy,
                         id="moderation-submit"),
        form_error=ReviewModerationState.form_error, on_submit=ReviewModerationState.moderate, max_width="480px",
        open=ReviewModerationState.moderating_id != 0, on_open_change=ReviewModerationState.set_moderation_open,
    )


@page("/admin/reviews", "Reported reviews", on_load=ReviewModerationState.load)
def admin_reviews() -> rx.Component:
    return list_page("Reported reviews", "Reviews someone reported, open reports first.",
                     loaded=ReviewModerationState.loaded, items=ReviewModerationState.reported,
                     empty=empty_state("shield-check", "Nothing reported", "Reports from users show up here."),
                     shown=card_stack(ReviewModerationState.reported, reported_card, spacing="3",
                                      id="reported-reviews"),
                     after=(moderation_dialog(),))
