"""The bus389 benchmark suite: every line against its raw baseline, measured in the same run.

``python -m bus389.bench`` (``make bench``) or ``bus389 bench`` runs it; ``--quick`` for a short run,
``--only NAME`` for one benchmark. See ``docs/benchmarks.md`` for the figures and how to read them.
"""

from __future__ import annotations

__all__: list[str] = []
