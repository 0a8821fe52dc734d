"""Developer scripts (run as files: `.venv/bin/python scripts/<name>.py`); a package so tests can import them."""
