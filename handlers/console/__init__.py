"""The operator console: server-rendered pages under /api/console/ (routes.py)."""
