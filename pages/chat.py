"""Messages: the conversation list and a live conversation."""

from __future__ import annotations

import reflex as rx

from components.buttons import link_button, named_upload
from components.layout import card_stack, empty_state, list_page, loading_panel, page_shell
from components.market import card_link
from pages.registry import page
from state.chat import ChatRoom, ChatState, ConversationsState


def conversation_row(c) -> rx.Component:
    return card_link(
        rx.hstack(
            rx.avatar(fallback=c.other_name.to(str)[0:1], size="3", radius="full"),
            rx.vstack(rx.text(c.other_name, weight="bold"), rx.text(c.title, size="2", color="var(--gray-11)"),
                      spacing="0"),
            rx.spacer(),
            rx.cond(c.unread > 0, rx.badge(c.unread, color_scheme="red", radius="full", class_name="unread")),
            align="center", width="100%",
        ),
        f"/messages/{c.id}", "conversation-row",
    )


def missed_notifications() -> rx.Component:
    return rx.cond(ConversationsState.notifications.length() > 0, rx.vstack(
        rx.text("While you were away", weight="bold", size="2", color="var(--gray-11)"),
        rx.foreach(ConversationsState.notifications, lambda n: rx.hstack(
            rx.icon("bell", size=14, color="var(--gray-11)"), rx.text(n.body, size="2"),
            rx.text(n.created_at, size="1", color="var(--gray-11)"), spacing="2", align="center",
            class_name="in-app-notification")),
        spacing="2", width="100%", id="notifications"))


@page("/messages", "Messages", on_load=ConversationsState.load)
def conversations() -> rx.Component:
    return list_page("Messages", "Talk with clients, professionals and the marketplace team.",
                     rx.button(rx.icon("life-buoy", size=16), "Contact support", variant="soft",
                               on_click=ConversationsState.open_support, id="contact-support"),
                     loaded=ConversationsState.loaded, items=ConversationsState.conversations,
                     empty=empty_state("messages-square", "No conversations yet",
                                       "A conversation opens when a professional quotes on a request."),
                     shown=card_stack(ConversationsState.conversations, conversation_row, id="conversations"),
                     after=(missed_notifications(),))


def attachment(a) -> rx.Component:
    return rx.cond(
        a.is_image,
        rx.link(rx.image(src=a.url, max_width="220px", max_height="180px", border_radius="8px", alt=a.name),
                href=a.url, is_external=True),
        rx.link(rx.hstack(rx.icon("file-text", size=14), rx.text(a.name, size="2"), spacing="1"), href=a.url,
                is_external=True),
    )


def bubble(m) -> rx.Component:
    mine = m.sender_id == ChatState.user_id
    return rx.flex(
        rx.vstack(
            rx.cond(~mine, rx.text(m.sender_name, size="1", weight="medium", color="var(--gray-11)")),
            rx.cond(m.body != "", rx.text(m.body, white_space="pre-wrap", word_break="break-word", size="2",
                                          class_name="message-body")),
            rx.foreach(m.attachments, attachment),
            rx.cond(mine, rx.text(rx.cond(ChatRoom.seen_ids.contains(m.id), "✓✓ Seen", "✓ Sent"), size="1",
                                  color="var(--gray-11)", align_self="end", class_name="receipt")),
            spacing="1", padding="8px 12px", border_radius="14px", max_width="78%",
            background=rx.cond(mine, "var(--accent-3)", "var(--gray-3)"),
        ),
        justify=rx.cond(mine, "end", "start"), width="100%", class_name="message",
        data_mine=rx.cond(mine, "true", "false"),
    )


@page("/messages/[conversation_id]", "Conversation", on_load=ChatState.load)
def conversation() -> rx.Component:
    c = ChatState.conversation
    others_typing = ChatRoom.typing.keys().length() > rx.cond(ChatRoom.typing.contains(ChatState.my_id), 1, 0)
    thread = rx.vstack(
        rx.hstack(
            rx.link(rx.icon("arrow-left", size=18), href="/messages", aria_label="All conversations"),
            rx.avatar(fallback=c.other_name.to(str)[0:1], size="2", radius="full"),
            rx.vstack(rx.heading(c.other_name, as_="h1", size="3"), rx.text(c.title, size="1", color="var(--gray-11)"),
                      spacing="0"),
            rx.box(width="10px", height="10px", border_radius="50%", id="online-dot",
                   background=rx.cond(ChatState.other_online, "var(--green-9)", "var(--gray-7)"),
                   title=rx.cond(ChatState.other_online, "online", "offline")),
            rx.spacer(),
            rx.cond(c.order_id, link_button("Order", href=f"/orders/{c.order_id}", size="1", variant="soft")),
            align="center", width="100%", spacing="3",
        ),
        rx.box(
            rx.vstack(
                rx.cond(ChatState.has_more, rx.button("Load older messages", size="1", variant="ghost",
                                                      on_click=ChatState.load_older, id="load-older")),
                rx.foreach(ChatState.older, bubble),
                rx.foreach(ChatRoom.messages, bubble),
                # a log: a screen reader announces each new message as it arrives, without moving focus
                spacing="2", width="100%", id="messages", role="log", aria_live="polite",
                aria_label=f"Messages with {c.other_name}",
            ),
            # column-reverse keeps the view anchored at the newest message as messages arrive
            display="flex", flex_direction="column-reverse",
            height=["55vh", "60vh"], overflow_y="auto", width="100%", padding="12px",
            border="1px solid var(--gray-a5)", border_radius="12px", background="var(--color-panel-solid)",
        ),
        rx.box(rx.cond(others_typing, rx.text(rx.foreach(ChatRoom.typing.values(), lambda n: rx.text.span(n, " ")),
                                              "is typing…", size="1", color="var(--gray-11)", id="typing")),
               height="18px"),
        rx.form(
            rx.vstack(
                rx.hstack(
                    rx.text_area(name="body", id="chat-body", placeholder="Write a message", rows="2", width="100%",
                                 aria_label="Message",
                                 max_length=4000, on_change=ChatState.typing.throttle(1500)),
                    named_upload("Attach files",
                                 rx.icon_button(rx.icon("paperclip", size=16), variant="soft", type="button",
                                                aria_label="Attach files", tab_index=-1),
                              id="chat-files", multiple=True, max_files=ChatState.max_attachments, no_drag=True,
                              border="none", padding="0", width="auto",
                              on_drop=ChatState.send_files(rx.upload_files(upload_id="chat-files")),
                              accept={"image/png": [".png"], "image/jpeg": [".jpg", ".jpeg"],
                                      "image/webp": [".webp"], "image/gif": [".gif"],
                                      "application/pdf": [".pdf"]}),
                    rx.button(rx.icon("send", size=16), "Send", type="submit", loading=ChatState.busy,
                              id="chat-send"),
                    align="end", width="100%", spacing="2",
                ),
                spacing="1", width="100%",
            ),
            on_submit=ChatState.send_text,
            reset_on_submit=True, width="100%",
        ),
        rx.moment(interval=4000, on_change=ChatState.tick, display="none"),
        spacing="3", width="100%",
    )
    return page_shell(rx.cond(
        ChatState.missing,
        rx.box(empty_state("message-square-off", "Conversation not found", "It doesn't exist or isn't yours."),
               id="conversation-missing"),
        rx.cond(c, thread, loading_panel()),
    ))
