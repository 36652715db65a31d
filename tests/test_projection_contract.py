"""The projection contract (``hub.testing.ProjectionContract``) run on the built-in projections,
over the sample events every installed connector ships: the same suite a third-party projection
package runs on itself.

``accounting`` is left out: it books documents only for a tenant with a sync target and ledger
entries to send (its replay and rebuild are covered in ``tests/accounting``).
"""

from __future__ import annotations

import pytest

from hub.spi.projection import Projection
from hub.testing import ProjectionContract
from projections.event_counts import EventCounts
from projections.ledger import Ledger
from projections.reconciliation import Reconciliation

BUILT_IN = {p.name: p for p in (EventCounts, Ledger, Reconciliation)}


class TestBuiltInProjections(ProjectionContract):
    @pytest.fixture(params=sorted(BUILT_IN), ids=str)
    def projection_class(self, request: pytest.FixtureRequest) -> type[Projection]:
        return BUILT_IN[str(request.param)]
