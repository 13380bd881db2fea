"""Live chat between a client and a professional in two browser contexts."""

from __future__ import annotations

import uuid

from playwright.sync_api import expect

from tests.e2e.conftest import logged_in, requested_and_quoted


def test_live_messages_typing_receipts_xss_and_unread_badge(new_context, app, tmp_path):
    title = f"Chat about a tap {uuid.uuid4().hex[:6]}"
    client, pro, request_url = requested_and_quoted(new_context, app, title, "90",
                                                    "I can come on Tuesday with a new washer.")

    # both open the conversation the quote started
    client.goto(request_url)
    client.locator(".quote-card", has_text="Diego Ramos").locator(".quote-chat").click()
    expect(client.locator("#chat-body")).to_be_visible()
    pro.goto(app.url("/pro/quotes"))
    pro.locator(".my-quote", has_text=title).locator(".quote-chat").click()
    expect(pro.locator("#chat-body")).to_be_visible()

    client.locator("#chat-body").fill("Hi Diego, is Tuesday morning possible?")
    client.locator("#chat-send").click()
    expect(pro.locator(".message-body", has_text="is Tuesday morning possible")).to_be_visible()  # pushed live
    expect(client.locator(".message[data-mine='true'] .receipt").last).to_have_text("✓✓ Seen")  # pro's page read it

    pro.locator("#chat-body").press_sequentially("Sure, ", delay=50)
    expect(client.locator("#typing")).to_contain_text("is typing")
    xss = "<script>window.pwned=1</script><img src=x onerror=\"window.pwned=1\">"
    pro.locator("#chat-body").fill(xss)
    pro.locator("#chat-send").click()
    expect(client.locator(".message-body").last).to_have_text(xss)  # shown literally, never run
    assert client.evaluate("window.pwned === undefined")
    expect(client.locator("#typing")).to_have_count(0, timeout=15_000)
    expect(pro.locator(".message[data-mine='true'] .receipt").last).to_have_text("✓✓ Seen")  # the client read it

    # away from the conversation, a new message shows as unread in the navigation, and clears once read
    client.goto(app.url("/client"))
    pro.locator("#chat-body").fill("See you Tuesday at 9.")
    pro.locator("#chat-send").click()
    expect(client.locator("#unread-badge")).to_have_text("1", timeout=15_000)
    client.locator("#messages-link").click()
    client.locator(".conversation-row", has_text=title).click()
    expect(client.locator(".message-body", has_text="See you Tuesday at 9.")).to_be_visible()
    expect(client.locator("#unread-badge")).to_have_count(0, timeout=15_000)

    # a photo goes with the paperclip and shows inline on the other side; a fake one is refused
    import io

    from PIL import Image

    photo, fake = tmp_path / "tap.png", tmp_path / "virus.png"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "navy").save(buffer, "PNG")
    photo.write_bytes(buffer.getvalue())
    fake.write_bytes(b"MZ not really a picture")
    client.locator("#chat-files input[type=file]").set_input_files(str(fake))
    expect(client.get_by_text("virus.png:", exact=False).first).to_be_visible()  # the refusal names the file
    client.locator("#chat-files input[type=file]").set_input_files(str(photo))
    expect(pro.locator(".message img")).to_have_count(1)

    # someone else cannot open it
    other = new_context().new_page()
    logged_in(other, app, "ben@demo.example")
    other.goto(client.url)
    expect(other.locator("#conversation-missing")).to_be_visible()
