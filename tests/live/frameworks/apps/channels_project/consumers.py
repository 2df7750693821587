"""Websocket consumers that report the session they run in."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer

from ..routes import current_id, echo

ROOM = "room"


class EchoConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """Sends the id on connect, then answers each message with `<text>:<id>`."""

    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data=current_id() or "none")

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=echo(text_data or ""))


class SyncEchoConsumer(WebsocketConsumer):  # type: ignore[misc]
    """The same, as a sync consumer, whose handlers Channels runs in a worker thread."""

    def connect(self) -> None:
        self.accept()
        self.send(text_data=current_id() or "none")

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.send(text_data=echo(text_data or ""))


class RoomConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """Joins one group; a message sent to it reaches every member through the channel layer."""

    async def connect(self) -> None:
        await self.channel_layer.group_add(ROOM, self.channel_name)
        await self.accept()
        await self.send(text_data=current_id() or "none")

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(ROOM, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.channel_layer.group_send(ROOM, {"type": "room.message", "text": text_data})

    async def room_message(self, event: dict[str, Any]) -> None:
        # Runs in the receiving connection's task: its own handshake's session, not the sender's.
        await self.send(text_data=echo(event["text"]))
