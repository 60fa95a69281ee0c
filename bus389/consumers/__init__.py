"""The consuming side of the bus: the router and the agency services that read their inboxes."""
