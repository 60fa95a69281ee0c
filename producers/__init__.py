"""The publishing side of the bus: input files read into validated events and published to an outbox.

:mod:`producers.readers` reads JSON, JSON Lines and CSV; :mod:`producers.publisher` validates every
record and publishes them transactionally to the publishing agency's outbox.
"""
