"""``vifscope serve``: the HTTP API and the live web page (FastAPI + uvicorn).

``app.create_app(config, backend)`` builds the app (no module-level app); ``layout`` is the
pure graph layout the page draws; ``static/`` holds the page (plain ES modules, no build
step, no CDN). Nothing is imported here so ``vifscope graph`` can use ``layout`` without
loading FastAPI.
"""
