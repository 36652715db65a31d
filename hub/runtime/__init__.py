"""The projection runtime: runs the projections (``hub.spi.projection``) over the log.

- ``worker``: ``Worker``; ``await Worker(dsn, projections, config=config).run()`` is what
  ``ledgerhub worker`` and ``ledgerhub serve`` run (leases spread projections, and the
  partitions of a projection run as several, over processes).
- ``runner``: one projection partition's loop (batches, parking, replay and rebuild jobs; hands
  the projection its configuration, read anew when a rebuild starts).
- ``operate``: what operators do (status, replay, rebuild, parked), shared by CLI and HTTP.
- ``settings``: lease time to live, polling, batch size, retries, partitions per projection.

The ``Projection`` base class a plugin subclasses and the discovery of installed projections
are the plugin surface: ``hub.spi.projection`` and ``hub.spi.registry``.
"""
