from __future__ import annotations

import app


def test_public_surface() -> None:
    assert sorted(app.__all__) == ["ChatPlugin", "Settings", "__version__", "create_app"]
    for name in app.__all__:
        assert hasattr(app, name)
