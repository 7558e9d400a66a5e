"""Access keeps no tables of its own yet: it reads records through `queries` and audits every read."""
