"""Identities, roles, the permission choke point, API tokens and the hash-chained audit trail."""
