"""One active alerts service per consumer group; any other one started by mistake stands by.

The detector must see every partition of the scored topic (an alert key spans them all), and two
dispatchers would each notify: with faust's default assignor, a second `riskpulse alerts run` in
the group would take half the partitions, and both halves would judge windows on half the data
and deliver their own notifications. This assignor gives every partition to one member: the one
that already holds them (so a newcomer changes nothing), else the first by member id. A member
without partitions does nothing but wait; when the active one dies, the group's rebalance hands
everything to a standby, which then restores detector state and the outbox from the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.assignor import PartitionAssignor
from faust.assignor.client_assignment import ClientAssignment


def active_member(holding: Mapping[str, bool]) -> str:
    """The member to get everything: one that holds partitions now (sticky), else the lowest id."""
    return min((m for m, held in holding.items() if held), default=min(holding))


def one_active(assignments: Mapping[str, ClientAssignment], member: str) -> dict[str, ClientAssignment]:
    """Every active partition of ``assignments`` moved to ``member``; the others get none."""
    merged: dict[str, set[int]] = {}
    for assignment in assignments.values():
        for topic, partitions in assignment.actives.items():
            merged.setdefault(topic, set()).update(partitions)
    everything = ClientAssignment(actives={t: sorted(p) for t, p in merged.items()}, standbys={})
    return {m: everything if m == member else ClientAssignment(actives={}, standbys={}) for m in assignments}


class OneActiveAssignor(PartitionAssignor):
    """faust's assignor, then all partitions to :func:`active_member` (set as the app's PartitionAssignor)."""

    _member = ""

    def _perform_assignment(self, cluster: Any, member_metadata: Any) -> Any:
        holding = {
            member: any(self._get_client_metadata(metadata).assignment.actives.values())
            for member, metadata in member_metadata.items()
        }
        self._member = active_member(holding)
        return super()._perform_assignment(cluster, member_metadata)

    def _protocol_assignments(self, assignments: Any, cl_distribution: Any, tp_distribution: Any,
                              topic_groups: Any) -> Any:
        return super()._protocol_assignments(one_active(assignments, self._member), cl_distribution,
                                             tp_distribution, topic_groups)
