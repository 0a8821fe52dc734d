"""The standalone server serves its playground page and files, and leaves them out of the OpenAPI document."""

from __future__ import annotations

from litestar.testing import TestClient

from app.server import build_app


def test_the_page_and_its_files_are_served_from_the_package() -> None:
    with TestClient(build_app({"DATABASE_URL": "memory://", "CHAT_AUTH_TOKENS": "t:u"})) as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert (
            '<script type="module" src="/playground/app.js">' in page.text and "http" not in page.text.split("<body")[0]
        )
        assert client.get("/playground/app.js").headers["content-type"].startswith("text/javascript")
        assert client.get("/playground/app.css").status_code == 200
        paths = client.get("/schema/openapi.json").json()["paths"]
        assert "/" not in paths and not any(p.startswith("/playground") for p in paths)
