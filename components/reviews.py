"""Ratings and reviews: stars shown and picked, rating badges, the rating summary and a review's card."""

from __future__ import annotations

import functools
import operator

import reflex as rx

from components.forms import field_error

STAR = "var(--amber-9)"
NO_STAR = "var(--gray-7)"

# Stars picked with native radio buttons, each inside its star's label and spread over it, transparent: a click or a
# tap on a star is on its radio, and the arrow keys move between them in the order shown. A star lights when its
# radio or a later one is checked (`:has(~ label ...)`); while the pointer is over the row, the stars up to the
# hovered one light instead (`&&` outweighs the checked rules).
_LIT = {"color": STAR, "--star-fill": "currentColor"}
_UNLIT = {"color": NO_STAR, "--star-fill": "none"}
_PICKER_CSS = {
    "& label": {**_UNLIT, "position": "relative", "padding": "4px", "borderRadius": "6px", "lineHeight": "0"},
    "& input": {"position": "absolute", "inset": "0", "width": "100%", "height": "100%", "margin": "0",
                "opacity": "0", "cursor": "pointer"},
    "& label svg": {"fill": "var(--star-fill)"},
    "& label:has(input:checked), & label:has(~ label input:checked)": _LIT,
    "&&:hover label": _UNLIT,
    "&&:hover label:hover, &&:hover label:has(~ label:hover)": _LIT,
    "& label:has(input:focus-visible)": {"outline": "2px solid var(--accent-8)", "outlineOffset": "1px"},
}


def sr_only(text) -> rx.Component:
    """Text for screen readers only (the name of an icon-only control)."""
    return rx.el.span(text, style={"position": "absolute", "width": "1px", "height": "1px", "overflow": "hidden",
                                   "clip": "rect(0 0 0 0)", "whiteSpace": "nowrap"})


def stars(value, size: int = 16, label=None) -> rx.Component:
    """Five stars, `value` of them filled (a whole number), read out as "4 out of 5 stars" (or as `label`: an
    average's stars are rounded, its label is not)."""
    return rx.hstack(
        *[rx.icon("star", size=size, color=rx.cond(value >= n, STAR, NO_STAR),
                  fill=rx.cond(value >= n, "currentColor", "none")) for n in range(1, 6)],
        spacing="0", role="img", aria_label=label if label is not None else f"{value} out of 5 stars",
        flex_shrink="0",
    )


def rating_badge(badge, *, who: str = "Rated") -> rx.Component:
    """A card's rating: "★ 4.8 (12)", or "No reviews yet"; `badge` is a RatingBadge var (maybe missing)."""
    return rx.cond(
        badge & (badge.count > 0),
        rx.hstack(rx.icon("star", size=14, color=STAR, fill="currentColor"),
                  rx.text(badge.average_text, size="2", weight="bold"),
                  rx.text("(", badge.count, ")", size="2", color="var(--gray-11)"),
                  spacing="1", align="center", role="img", class_name="rating-badge",
                  aria_label=f"{who} {badge.average_text} out of 5 from {badge.count} reviews"),
        rx.text("No reviews yet", size="1", color="var(--gray-11)", class_name="rating-badge"),
    )


def star_picker(legend: str, name: str, errors: rx.Var, default=None, *, size: int = 26) -> rx.Component:
    """Stars 1-5 as a group of radio buttons named "1 star" .. "5 stars" under `legend`; `default` (a var, maybe
    missing) checks one."""
    options: list[rx.Component] = []
    for n in range(1, 6):
        option_id = f"{name}-{n}"
        label = f"{n} star" if n == 1 else f"{n} stars"
        options.append(rx.el.label(
            rx.el.input(type="radio", name=name, value=str(n), id=option_id,
                        default_checked=(default == n) if default is not None else False),
            rx.icon("star", size=size), sr_only(label), title=label))
    return rx.el.fieldset(
        rx.el.legend(legend, style={"fontSize": "var(--font-size-2)", "fontWeight": "500", "padding": "0"}),
        rx.box(*options, display="flex", margin_left="-4px", style=_PICKER_CSS),
        field_error(errors, name),
        id=name, border="none", padding="0", margin="0", min_width="0",
    )


def _bar(percent, label: str) -> rx.Component:
    return rx.box(rx.box(width=f"{percent}%", height="100%", background=STAR, border_radius="4px"),
                  flex="1", height="8px", background="var(--gray-4)", border_radius="4px", aria_hidden="true",
                  min_width="60px", title=label)


def rating_summary(summary, whole_stars, bars, sub_averages) -> rx.Component:
    """The profile's summary: the average (and `whole_stars`, it rounded) and count, the 5★..1★ distribution, the
    sub-rating averages."""
    average = rx.vstack(
        rx.text(summary.average_text, size="8", weight="bold", line_height="1"),
        stars(whole_stars, size=18, label=f"Rated {summary.average_text} out of 5"),
        rx.text(summary.count, rx.cond(summary.count == 1, " review", " reviews"), size="2",
                color="var(--gray-11)", id="rating-count"),
        spacing="2", align="start", min_width="130px",
    )
    distribution = rx.vstack(
        rx.foreach(bars, lambda b: rx.hstack(
            rx.text(b.label, size="2", width="56px", flex_shrink="0"), _bar(b.percent, b.label),
            rx.text(b.count, size="2", color="var(--gray-11)", width="32px", text_align="right"),
            spacing="2", align="center", width="100%")),
        spacing="1", flex="1", min_width="200px", width="100%", id="rating-distribution",
    )
    subs = rx.cond(sub_averages.length() > 0, rx.vstack(
        rx.foreach(sub_averages, lambda s: rx.hstack(
            rx.text(s.label, size="2", width="120px", flex_shrink="0"), _bar(s.percent, s.label),
            rx.text(s.value, size="2", weight="medium", width="32px", text_align="right"),
            spacing="2", align="center", width="100%")),
        spacing="1", flex="1", min_width="200px", width="100%", id="rating-subratings",
    ))
    return rx.flex(average, distribution, subs, gap="24px", wrap="wrap", width="100%", align="start",
                   id="rating-summary")


def hidden_notice(r) -> rx.Component:
    return rx.cond(r.hidden, rx.callout(
        rx.text("Hidden by the marketplace: ", r.hidden_reason), icon="eye-off", color_scheme="gray", size="1",
        width="100%", class_name="hidden-notice"))


def review_card(r, *actions: rx.Component, heading=None, subratings: tuple[tuple[str, str], ...] = (),
                footer: rx.Component | None = None) -> rx.Component:
    """One review: who wrote it (or `heading`) and when, its stars (and the `subratings` it has), its text, the
    reviewee's reply, then `footer` and the `actions` (report, reply...). Texts are shown as text, never as markup."""
    given = [r[key] != None for key, _ in subratings]  # noqa: E711  (each sub-rating may be left out)
    subs = rx.cond(functools.reduce(operator.or_, given), rx.flex(
        *[rx.cond(shown, rx.hstack(rx.text(label, size="1", color="var(--gray-11)"), stars(r[key], size=12),
                                   spacing="1", align="center"))
          for shown, (key, label) in zip(given, subratings, strict=True)],
        gap="4px 16px", wrap="wrap")) if subratings else rx.fragment()
    return rx.card(
        rx.vstack(
            rx.flex(
                rx.vstack(heading if heading is not None else rx.text(r.author_name, weight="bold"),
                          rx.text(rx.cond(r.published_at != "", r.published_at, r.submitted_at), size="1",
                                  color="var(--gray-11)"),
                          spacing="0"),
                rx.spacer(),
                stars(r.stars),
                gap="8px", width="100%", align="center", wrap="wrap",
            ),
            subs,
            rx.text(r.text, size="2", white_space="pre-wrap", word_break="break-word", class_name="review-text"),
            rx.cond(r.reply != "", rx.box(
                rx.text("Reply from ", r.subject_name, rx.cond(r.replied_at != "", rx.text.span(" · ", r.replied_at)),
                        size="1", weight="medium", color="var(--gray-11)"),
                rx.text(r.reply, size="2", white_space="pre-wrap", word_break="break-word"),
                border_left="3px solid var(--accent-6)", padding_left="12px", width="100%", class_name="review-reply")),
            hidden_notice(r),
            *([footer] if footer is not None else []),
            *([rx.flex(*actions, gap="8px", wrap="wrap", justify="end", width="100%")] if actions else []),
            spacing="2", width="100%",
        ),
        width="100%", class_name="review-card", data_review=r.id,
    )
