"""The webhook outbox: messages, lanes, attempts and the dispatcher's position, in the event store.

One module per job, all on the same tables (``tables.py``):

- ``dispatch_log``: the dispatcher's position and the messages it writes
  (``workflows.webhooks.dispatch``);
- ``leases``: lanes, their leases, a lane's pending messages and the due lanes
  (``workflows.webhooks.delivery`` and the sweeper);
- ``attempts``: every attempt, its message's state, the endpoint's failure run
  (``workflows.webhooks.delivery``);
- ``delivery_log``: what the API shows and does (deliveries, redeliver, recover).

``records`` holds the values they exchange.  ``Outbox`` is the parts of one
store, built together.
"""

from __future__ import annotations

from workflows.ledger import Ledger
from workflows.webhooks.outbox.attempts import AttemptLog
from workflows.webhooks.outbox.delivery_log import DeliveryLog
from workflows.webhooks.outbox.dispatch_log import DispatchLog
from workflows.webhooks.outbox.leases import LaneLeases
from workflows.webhooks.outbox.tables import OutboxTables


class Outbox:
    """The outbox parts of one application's event store, on one ``OutboxTables``."""

    def __init__(self, app: Ledger) -> None:
        self.tables = OutboxTables(app)
        self.dispatch = DispatchLog(self.tables)
        self.leases = LaneLeases(self.tables)
        self.attempts = AttemptLog(self.tables)
        self.log = DeliveryLog(self.tables)
