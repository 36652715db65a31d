"""The hub's HTTP API (aiohttp): ingestion, reads, health, the OpenAPI document.

- ``app``: ``build_app`` assembles routes, middlewares and background tasks.
- ``routing``: ``ApiRoute`` and the auth each route declares (``requires(Access.READ)`` …).
- ``auth``: bearer keys checked against the declared access.
- ``problems``: RFC 9457 problem+json for every error.
- ``events``, ``webhooks``, ``health``: the route modules; ``openapi``: the spec, generated.
"""
