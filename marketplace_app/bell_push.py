"""The live bell's pusher: a lifespan task of the web process that takes the backend's bell signals (rung after a
commit that changed someone's in-app notifications, here or in a Celery worker) and sets each open bell's unread count
and latest items from the database, through Reflex's state manager, which sends them to every tab linked to it.

Following what was measured on Reflex 0.10.1 (a push from outside any event handler): the pusher runs as its own
task, never inside a handler (a handler awaiting a push to its own user's bell would wait for its own lock); signals
come from a list, so with several web processes each is pushed once (REFLEX_REDIS_URL carries the push to whichever
process holds the tab); and the numbers are read from the database, so a repeated or late signal sets the same values.
"""

from __future__ import annotations

import asyncio
import logging

import reflex as rx

from backend.bootstrap import services
from backend.notifications.bell import Ping
from state.notifications import BELL_ITEMS, NotificationBell, bell_token

log = logging.getLogger(__name__)

WAIT_SECONDS = 2.0  # one blocking read at most this long: the task stops promptly when the app does


async def push_bell(app: rx.App, tenant_id: int, user_id: int) -> None:
    """Set one user's bell from the database; every tab linked to it re-renders."""
    view = await asyncio.to_thread(services().notifications.bell_view, tenant_id, user_id, limit=BELL_ITEMS)
    async with app.modify_state(rx.BaseStateToken(ident=bell_token(tenant_id, user_id),
                                                  cls=NotificationBell)) as root:
        bell = await root.get_state(NotificationBell)
        bell.unread, bell.items = view.unread, view.items
        bell.pulse += 1


async def _push_all(app: rx.App, pings: list[Ping]) -> None:
    for tenant_id, user_id in pings:
        try:
            await push_bell(app, tenant_id, user_id)
        except Exception:  # one user's failed push must not stop the others'
            log.exception("pushing the bell of user %s (tenant %s) failed", user_id, tenant_id)


async def push_bells_forever(app: rx.App) -> None:
    """Registered with app.register_lifespan_task: drain the bell feed for as long as the app runs."""
    feed = services().notifications.bell
    if feed is None:
        log.warning("no bell feed is configured: in-app notifications show on the next page load only")
        return
    while True:
        try:
            pings = await asyncio.to_thread(feed.wait, WAIT_SECONDS)
            if pings:
                await _push_all(app, await asyncio.to_thread(feed.watched, pings))
        except asyncio.CancelledError:
            raise
        except Exception:  # keep the pusher alive; the next signal is tried afresh
            log.exception("the bell pusher failed; going on")
            await asyncio.sleep(1.0)
