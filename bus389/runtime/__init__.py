"""The service runtime: what every long-running service shares.

:mod:`~bus389.runtime.stop` (the SIGTERM flag), :mod:`~bus389.runtime.member` (the self-healing group
member) and :mod:`~bus389.runtime.inbox_loop` (the agency services' loop). Above the Kafka helpers, below
the producers and the consumers (docs/architecture.md). Nothing is re-exported here, so that a command
that needs only the stop flag does not load the codec and the metrics.
"""
