"""Routers shared by several stages. Django resolves one URL pattern per path, so every
operation under /records must live on the same router; each stage adds its own operations."""

from ninja import Router

records = Router()
