"""The dashboard's websocket: joins this process's live group and forwards rendered partials."""

import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.roles import OPERATOR, RANK, VIEWER, role_of
from live.broadcaster import broadcaster

FORBIDDEN = 4403
SESSION_OVER = 4401
ROLE_RECHECK_SECONDS = 60


def _current_role(user_id: int) -> str | None:
    user = get_user_model().objects.filter(pk=user_id).first()
    return role_of(user)


class LiveConsumer(AsyncWebsocketConsumer):
    """Pushes htmx out-of-band swaps; viewers get the page without retry buttons."""

    variant = "viewer"
    joined = False

    async def connect(self) -> None:
        role = await database_sync_to_async(role_of)(self.scope.get("user"))
        if RANK[role] < RANK[VIEWER]:
            await self.close(code=FORBIDDEN)
            return
        self.variant = "operator" if RANK[role] >= RANK[OPERATOR] else "viewer"
        self.user_id = self.scope["user"].pk
        self.session_expires_at = await database_sync_to_async(self.scope["session"].get_expiry_date)()
        self.recheck_at = time.monotonic() + ROLE_RECHECK_SECONDS
        await self.accept()
        await self.channel_layer.group_add(broadcaster.group, self.channel_name)
        self.joined = True
        broadcaster.attach()
        await self.send(text_data=(await broadcaster.current())[self.variant])

    async def disconnect(self, code: int) -> None:
        if self.joined:
            broadcaster.detach()
            await self.channel_layer.group_discard(broadcaster.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        """The browser only listens."""

    async def live_update(self, event: dict) -> None:
        if not await self._still_allowed():
            return
        await self.send(text_data=event[self.variant])

    async def _still_allowed(self) -> bool:
        """An open socket obeys the session's end and role changes, like a page load would."""
        if timezone.now() >= self.session_expires_at:
            await self.close(code=SESSION_OVER)
            return False
        if time.monotonic() >= self.recheck_at:
            self.recheck_at = time.monotonic() + ROLE_RECHECK_SECONDS
            if RANK[await database_sync_to_async(_current_role)(self.user_id)] < RANK[VIEWER]:
                await self.close(code=FORBIDDEN)
                return False
        return True
