"""``python -m bus389.bench``: run the benchmark suite (see :mod:`bus389.bench.runner`)."""

from __future__ import annotations

from bus389.bench.runner import main

raise SystemExit(main())
