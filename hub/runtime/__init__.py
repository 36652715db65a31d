"""The projection runtime: the ``Projection`` base class, workers, leases, jobs, parked events.

- ``projection``: the base class and the ``Context`` a handler gets (read its docstring first).
- ``worker``: ``Worker``; ``await Worker(dsn, projections).run()`` is what ``ledgerhub worker``
  and ``ledgerhub serve`` run (leases spread projections over processes).
- ``runner``: one projection's loop (batches, parking, replay and rebuild jobs).
- ``registry``: discovery (entry points ``ledgerhub.projections``, ``LEDGERHUB_PROJECTIONS``).
- ``operate``: what operators do (status, replay, rebuild, parked), shared by CLI and HTTP.
- ``settings``: lease time to live, polling, batch size, retries.
"""

from hub.spi.projection import Context, Projection

__all__ = ["Context", "Projection"]
