"""The routing policy and the pure routing decision: the router applies them; so does ``routes explain``."""
