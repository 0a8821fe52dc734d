"""An existing Litestar application (the host) that embeds chatstream with `ChatPlugin`."""
