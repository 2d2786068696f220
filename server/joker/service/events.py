"""Per-job event fan-out from the executor thread to server-sent-event streams."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict
from typing import Any

QUEUE_LIMIT = 256  # a reader that falls this far behind loses its oldest events


class EventHub:
    """`publish` is called from any thread; each subscriber is an asyncio queue on the
    server's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[asyncio.Queue]] = defaultdict(set)

    def subscribe(self, job_id: str) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(QUEUE_LIMIT)
        with self._lock:
            self._subscribers[job_id].add(queue)
        return queue

    def unsubscribe(self, job_id: str, queue: asyncio.Queue) -> None:
        with self._lock:
            self._subscribers[job_id].discard(queue)
            if not self._subscribers[job_id]:
                del self._subscribers[job_id]

    def publish(self, job_id: str, kind: str, data: dict[str, Any]) -> None:
        with self._lock:
            queues = list(self._subscribers.get(job_id, ()))
        for queue in queues:
            if not self._loop.is_closed():  # the server may be shutting down
                self._loop.call_soon_threadsafe(_put_dropping_oldest, queue, (kind, data))


def _put_dropping_oldest(queue: asyncio.Queue, item: tuple[str, dict]) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)


def format_sse(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


HEARTBEAT = b": keep-alive\n\n"
