"""Production operations: metrics, structured logs, readiness, IP allow-list, After* forwarding.

Attached to the app through `web.install(app, receiver)` and to gunicorn through `hooks`; nothing
here is imported by the sans-I/O core or by rules.
"""
