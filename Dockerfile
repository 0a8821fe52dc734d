# The standalone chatstream server: `python -m app` on 0.0.0.0:8000 (configure with env, see README).
# Binding 0.0.0.0, it refuses to start without CHAT_AUTH_TOKENS or CHAT_JWT_SECRET (no demo token here).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HOST=0.0.0.0 \
    PORT=8000

WORKDIR /srv
COPY pyproject.toml README.md* ./
COPY chatstream ./chatstream
# /srv writable by the server: with neither DATABASE_URL nor REDIS_URL its store is SQLite in ./chatstream.db.
RUN pip install '.[all]' && useradd --system --no-create-home chat && chown chat /srv
# The standalone server is not part of the distribution: it runs from the working directory.
COPY app ./app
USER chat
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz', timeout=2)"
# CHAT_WORKERS=N (or `python -m app --workers N`) runs N processes; they share state through REDIS_URL.
CMD ["python", "-m", "app"]
