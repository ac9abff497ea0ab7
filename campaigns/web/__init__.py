"""Serving an ASGI app with uvicorn, shared by the HTTP services (``api``, ``webhooks``)."""
