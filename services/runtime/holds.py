"""Offsets a handler has taken on but finishes later: delivery takes an action that must wait
for the platform's pacing, lets its batch be done, and delivers it when it is due. The consumer
loop commits each partition only up to the first offset still held, so a crash loses nothing
(what was held is read again, and the ledger answers what was finished), and it pauses a
partition that holds too many (backpressure) until they drain."""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable

from aiokafka import TopicPartition


class Holds:
    def __init__(self, limit: int) -> None:
        self.limit = limit  # per partition; over it, the partition is paused
        self._held: defaultdict[TopicPartition, set[int]] = defaultdict(set)
        self._order: defaultdict[TopicPartition, list[int]] = defaultdict(list)  # a heap
        self._owned: set[TopicPartition] = set()

    def owns(self, tp: TopicPartition) -> bool:
        """Whether the partition is this consumer's: a batch in hand when it was taken away
        must not take on its records (the next owner reads them again)."""
        return tp in self._owned

    def assigned(self, partitions: Iterable[TopicPartition]) -> None:
        self._owned |= set(partitions)

    def disown(self, partitions: Iterable[TopicPartition]) -> None:
        """The partitions are being taken away: nothing new is held for them from now on."""
        self._owned -= set(partitions)

    def hold(self, tp: TopicPartition, offset: int) -> None:
        if tp in self._owned and offset not in self._held[tp]:
            self._held[tp].add(offset)
            heapq.heappush(self._order[tp], offset)

    def release(self, tp: TopicPartition, offset: int) -> None:
        self._held[tp].discard(offset)

    def first(self, tp: TopicPartition) -> int | None:
        """The lowest offset still held in the partition, or None."""
        held, order = self._held[tp], self._order[tp]
        while order and order[0] not in held:
            heapq.heappop(order)
        return order[0] if order else None

    def count(self, tp: TopicPartition) -> int:
        return len(self._held[tp])

    def drop(self, partitions: Iterable[TopicPartition]) -> None:
        """The partitions went elsewhere: whoever holds them now reads them again."""
        for tp in partitions:
            self._held.pop(tp, None)
            self._order.pop(tp, None)
