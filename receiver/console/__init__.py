"""The web console: live decisions, a search over the recordings, a record's details, a rule playground.

A Flask app of its own (app.py), served by `imhook console` (server.py) or mounted at /console on the
receiver when `console.enabled` (web.py). Server-rendered Jinja templates with htmx for the parts
that refresh; every asset is served from static/, nothing from a CDN. docs/console.md has the why.
"""
