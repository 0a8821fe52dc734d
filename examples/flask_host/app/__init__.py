"""An existing Flask application (the host) that serves chatstream under `/chat` through an ASGI-to-WSGI adapter."""
