"""An existing FastAPI application (the host) that mounts chatstream's ASGI app under `/chat`."""
