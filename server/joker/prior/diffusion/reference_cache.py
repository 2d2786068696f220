"""A small least-recently-used store for what depends only on the reference photo (its
latents; the reference UNet's features per timestep and text), so that work is done once
per noise level and reused by every view, chunk and batch at that level."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Callable, Hashable, TypeVar

import torch

Value = TypeVar("Value")


def tensor_digest(tensor: torch.Tensor) -> str:
    """A content key for a tensor: equal pixels give equal keys, whatever object holds them."""
    data = tensor.detach().to("cpu", torch.float32).contiguous().numpy()
    return hashlib.blake2b(data.tobytes() + str(data.shape).encode(), digest_size=16).hexdigest()


class ReferenceCache:
    def __init__(self, capacity: int = 16) -> None:
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, object] = OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], Value]) -> Value:
        if key in self._entries:
            self.hits += 1
            self._entries.move_to_end(key)
            return self._entries[key]  # type: ignore[return-value]
        self.misses += 1
        value = compute()
        if self.capacity > 0:
            self._entries[key] = value
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self._entries.clear()
