"""The router: routing policy, pure decision, redaction, replies, audit, dead letters and the service."""
