"""``python -m bench``: run the benchmark suite (see :mod:`bench.runner`)."""

from __future__ import annotations

from bench.runner import main

raise SystemExit(main())
