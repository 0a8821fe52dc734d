from __future__ import annotations

import chatstream


def test_public_surface() -> None:
    assert sorted(chatstream.__all__) == ["ChatPlugin", "Settings", "__version__", "create_app"]
    for name in chatstream.__all__:
        assert hasattr(chatstream, name)
