"""The hub's HTTP API (aiohttp): ingestion, operators' routes, health, metrics, the OpenAPI
document, and the routes the installed projections bring (``Projection.routes()``, built with
``hub.spi.http``: this package knows no projection).

- ``app``: ``build_app`` assembles routes (``api_routes``: the core ones and every installed
  projection's), middlewares and background tasks; ``server``: ``open_hub`` and ``serving``.
- ``routing``: ``ApiRoute`` and the auth each route declares (``requires(Access.READ)`` …).
- ``auth``: bearer keys checked against the declared access; ``key_cache``: cached look-ups.
- ``problems``: RFC 9457 problem+json for every error; ``tracing``: a span per request.
- ``context``: what handlers share (``HubContext``); ``bodies`` and ``reads``: reading requests,
  JSON or CSV answers; ``models``: the core request and response bodies.
- The core route modules: ``events``, ``webhooks``, ``operate``, ``sync``, ``health``,
  ``metrics``; ``openapi``: the spec, generated from the routes and their models.
"""
