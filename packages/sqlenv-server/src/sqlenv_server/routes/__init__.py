"""Routers, one per concern; ``sqlenv_server.app`` assembles them."""
