"""The web UI: server-rendered jinja2 pages with htmx, served by the API process.

`pages` mounts the page routers, the static files and the security headers; each other module
holds the pages of one area. Every page is backed by the same services as the REST API
(`orchestrator.services`), so whatever the UI does the API can do too.
"""
