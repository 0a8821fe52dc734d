"""The standalone chatstream server: what `make run`, the Dockerfile and docker-compose start.

Not part of the `chatstream` distribution. It adds the development conveniences the library never has:
a demo token on loopback, the mock provider when no key is set, and a start-up banner saying so.
"""
