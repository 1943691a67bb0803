"""The analyst dashboard: server-rendered pages (Jinja2) with a small, build-free script and style sheet.

Pages hold the layout, forms and labels; the script fills them from the same JSON API every client uses
(`/v1/...`) and keeps them live over the alerts WebSocket.
"""
