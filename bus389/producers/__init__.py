"""The publishing side of the bus: input files read into validated events and published to an outbox.

:mod:`bus389.producers.readers` reads JSON, JSON Lines and CSV; :mod:`bus389.producers.publisher` validates
every
record and publishes them transactionally to the publishing agency's outbox.
"""
