"""Ports for the clusters and servers tests start: found free when the test starts, never fixed numbers.

A fixed port fails a test whenever anything else on the machine holds it (a developer's broker, a second
pytest session, a demo); a base port is drawn at random below Linux's ephemeral range (32768+, where
client sockets in TIME_WAIT would hold it) and checked free, client and controller ports alike.
"""

from __future__ import annotations

import random

from bus389.localkafka.processes import port_free

__all__ = ["free_base_port", "port_free"]

_LOW, _HIGH = 20_000, 32_000 - 110


def free_base_port(size: int = 1) -> int:
    """A base port ``p`` with ``p…p+size-1`` (Kafka's client ports) and ``p+100…`` (its controller ports)
    all free now."""
    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(_LOW, _HIGH)
        wanted = [*range(base, base + size), *range(base + 100, base + 100 + size)]
        if all(port_free("127.0.0.1", port) for port in wanted):
            return base
    raise AssertionError(f"no {size} free base port(s) between {_LOW} and {_HIGH} after 500 tries")
