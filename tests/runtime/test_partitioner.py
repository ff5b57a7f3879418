"""Messages go to the partition every Kafka client would choose for their key."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from services.runtime.bus import group_key, partition_of


def test_the_partition_of_a_key_is_kafkas_default() -> None:
    default = DefaultPartitioner()
    for partitions in ([0, 1, 2], list(range(12))):
        for i in range(500):
            key = group_key("t-1", f"g-{i}")
            assert partition_of(key, partitions, partitions) == default(key, partitions, []), key
            assert partition_of(key, partitions, partitions) == default(key, partitions, [])


def test_a_message_without_a_key_goes_to_an_available_partition() -> None:
    assert partition_of(None, [0, 1, 2], [2]) == 2
