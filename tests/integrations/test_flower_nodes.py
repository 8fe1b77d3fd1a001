"""The ServerApp's handling of nodes that fail or stay silent, against a scripted Grid (no processes)."""

from __future__ import annotations

import pytest

pytest.importorskip("flwr", reason="Flower is not installed: pip install 'pftlab[flower]'")

from flwr.app import Error, Message, MetricRecord, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from pftlab.integrations.flower.server_app import Nodes, missing_summary

pytestmark = pytest.mark.flower


class ScriptedGrid:
    """Node n serves client n - 100 and does what `script[n]` says: ok, error, offline-error or silent."""

    def __init__(self, script: dict[int, str]) -> None:
        self.script, self.asked, self.offline = script, [], set()

    def get_node_ids(self) -> list[int]:
        return [n for n in self.script if n not in self.offline]

    def send_and_receive(self, messages: list[Message], timeout: float | None = None) -> list[Message]:
        self.asked.append(sorted(m.metadata.dst_node_id for m in messages))
        replies = []
        for i, m in enumerate(messages):
            m.metadata.__dict__["_message_id"] = f"{len(self.asked)}-{i}"
            node, what = m.metadata.dst_node_id, self.script[m.metadata.dst_node_id]
            if what == "ok":
                replies.append(Message(RecordDict({"metrics": MetricRecord({"client-id": node - 100})}), reply_to=m))
            elif what in ("error", "offline-error"):
                reply = Message(Error(3, f"node {node} failed"), reply_to=m)
                if what == "offline-error":  # the SuperLink answers for an offline node: its own id as source
                    reply.metadata.__dict__["_src_node_id"] = 0
                replies.append(reply)
        return replies


@pytest.fixture(autouse=True)
def _task_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages take their run and node id from the task they are built in; a ServerApp has one."""
    for name, value in (("_run_id", 1), ("_node_id", 0), ("_task_id", 1)):
        monkeypatch.setattr(TaskIdentity, name, value)


def test_a_silent_node_costs_one_timeout_and_a_failing_node_is_asked_again() -> None:
    grid = ScriptedGrid({100: "ok", 101: "silent", 102: "error", 103: "offline-error"})
    nodes = Nodes(grid, {c: {"node": 100 + c} for c in range(4)}, timeout=5.0)

    assert set(nodes.ask("train", [0, 1, 2, 3], {}, rnd=0)) == {0}
    assert nodes.gone == {1}
    why = {(e["client"], e["round"]): e["why"] for e in nodes.events}
    assert "no reply within round-timeout (5 s)" in why[(1, 0)]
    assert why[(2, 0)] == "error 3: node 102 failed"
    assert why[(3, 0)] == "error 3: node 103 failed"  # matched to its node by message id, not by source

    grid.script.update({102: "ok", 103: "ok"})  # the failures were passing
    assert set(nodes.ask("train", [0, 1, 2, 3], {}, rnd=1)) == {0, 2, 3}
    assert grid.asked[-1] == [100, 102, 103]  # the silent node is not asked again
    assert [e["client"] for e in nodes.events if e["round"] == 1] == [1]

    grid.offline.add(102)  # the SuperLink no longer lists it
    assert set(nodes.ask("evaluate", [0, 2, 3], {})) == {0, 3}
    assert grid.asked[-1] == [100, 103]
    assert nodes.events[-1]["why"] == "not connected"

    rounds = [{"round": 0, "missing": [1, 2, 3]}, {"round": 1, "missing": [1]}]
    summary = missing_summary(nodes.events, rounds, missing=[1, 2], kept=[0, 3])
    assert summary["rounds"] == {"0": [1, 2, 3], "1": [1]}
    assert summary["evaluation"] == [2] and summary["matrix"] == [1, 2] and summary["matrix_clients"] == [0, 3]
    assert summary["first_missed"]["1"]["round"] == 0 and summary["first_missed"]["2"]["message"] == "train"
