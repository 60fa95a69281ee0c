"""bus389: the information-sharing bus of the provincial steering committee 389 (BCĐ 389).

The package root only re-exports; each concept lives in its own module.
"""

from bus389.errors import BusError

__all__ = ["BusError", "__version__"]

__version__ = "0.1.0"
