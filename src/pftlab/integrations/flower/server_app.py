"""The ServerApp: global stage, personalization round (and validation round for the cross-site
choice), cross-site evaluation, run directory.

It holds no data: it learns each node's client id and split sizes from a query round, sends
weights out and gets weights and hit counts back, then writes the same run directory (same
metrics, same files) as `pftlab run`, plus flower.json with who took part in which round.
"""

from __future__ import annotations

import json
import time
from logging import WARN
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.common.logger import log as flwr_log
from flwr.serverapp import Grid, ServerApp

from pftlab import __version__
from pftlab.core.errors import UserError
from pftlab.core.io import config_hash, save_weights, write_json
from pftlab.core.sealed import write_manifest
from pftlab.core.weights import Weights
from pftlab.data.dataset import ClientData, Dataset, FederatedData
from pftlab.evaluate.choice import ValidationPool, named, others_mean
from pftlab.experiment.config import Config
from pftlab.experiment.results import write_results
from pftlab.experiment.runner import Pick, keep_best, set_threads
from pftlab.federated import ALGORITHMS, ClientUpdate, StageStats, drive_rounds
from pftlab.federated.algorithm import State
from pftlab.integrations.flower import steps
from pftlab.models import build_model

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    run_federation(grid, context.run_config)


SILENT = "silent"  # no reply within round-timeout


def _send(
    grid: Grid, node_ids: list[int], kind: str, content: dict[str, Any], timeout: float | None
) -> tuple[dict[int, Message], dict[int, str]]:
    """Send one message per node: (good replies by node id, what went wrong by node id).

    What went wrong: SILENT (no reply within `timeout`), "not connected" (the SuperLink no longer
    lists the node) or the error the node or the SuperLink replied with.
    """
    alive = set(grid.get_node_ids())
    failed = {n: "not connected" for n in node_ids if n not in alive}
    messages = [Message(RecordDict(content), n, kind) for n in node_ids if n in alive]
    replies = list(grid.send_and_receive(messages, timeout=timeout)) if messages else []
    # an error the SuperLink makes (node offline) comes from the SuperLink, not the node: match by message id
    dst = {m.metadata.message_id: m.metadata.dst_node_id for m in messages}
    good: dict[int, Message] = {}
    for r in replies:
        node = dst.get(r.metadata.reply_to_message_id, r.metadata.src_node_id)
        if r.has_error():
            failed[node] = f"error {r.error.code}: {r.error.reason}"
        else:
            good[node] = r
    for m in messages:
        if m.metadata.dst_node_id not in good:
            failed.setdefault(m.metadata.dst_node_id, SILENT)
    return good, failed


class Nodes:
    """The node of every client, and what went wrong with them.

    A node that fails (an error reply) is asked again next time. A node that stays silent for a
    whole round-timeout is taken as gone (a dead machine: a restarted SuperNode joins with a new
    node id that this run does not know) and is not asked again, so that it costs one
    round-timeout, not one per message.
    """

    def __init__(self, grid: Grid, clients: dict[int, dict[str, Any]], timeout: float | None) -> None:
        self.grid, self.clients, self.timeout = grid, clients, timeout
        self.events: list[dict[str, Any]] = []  # one per client that did not answer a message
        self.gone: set[int] = set()  # clients whose node stayed silent

    def ask(self, kind: str, clients: list[int], content: dict[str, Any], rnd: int | None = None) -> dict[int, Message]:
        """Send to the nodes of `clients`; their good replies by client id (a reply names its client)."""
        asked = [c for c in clients if c not in self.gone]
        good, failed = _send(self.grid, [self.clients[c]["node"] for c in asked], kind, content, self.timeout)
        by_node = {self.clients[c]["node"]: c for c in asked}
        for node, why in failed.items():
            cid = by_node[node]
            if why == SILENT:
                self.gone.add(cid)
                why = f"no reply within round-timeout ({self.timeout:g} s); not asked again"
            self._record(kind, rnd, cid, why)
        for cid in sorted(set(clients) - set(asked)):
            self._record(kind, rnd, cid, "its node stayed silent before; not asked")
        return {int(steps.scalar(r.content["metrics"]["client-id"])): r for r in good.values()}

    def _record(self, kind: str, rnd: int | None, cid: int, why: str) -> None:
        event = {"message": kind, "round": rnd, "client": cid, "node": self.clients[cid]["node"], "why": why}
        self.events.append(event)
        flwr_log(WARN, "pftlab: client %d (node %d) missing in %s%s: %s", cid, event["node"], kind,
            "" if rnd is None else f" round {rnd}", why)  # fmt: skip


def discover(grid: Grid, cfg_record: ConfigRecord, wait: float, timeout: float | None) -> dict[int, dict[str, Any]]:
    """client id -> (node id, the node's info), once every client of the federation has a node."""
    clients: dict[int, dict[str, Any]] = {}
    asked: set[int] = set()
    deadline = time.monotonic() + wait
    expected: int | None = None
    while expected is None or len(clients) < expected:
        new = [n for n in grid.get_node_ids() if n not in asked]
        for node, reply in _send(grid, new, "query", {"pftlab": cfg_record}, timeout)[0].items():
            info = dict(reply.content["info"])
            cid = int(steps.scalar(info["client-id"]))
            if cid in clients:
                raise UserError(f"client {cid} is served by two nodes ({clients[cid]['node']} and {node})")
            clients[cid] = {**info, "node": node}
            expected = int(steps.scalar(info["num-clients"]))
        asked.update(new)
        complete = expected is not None and len(clients) >= expected
        if not complete and time.monotonic() > deadline:  # a query round that completed the set is never late
            missing = sorted(set(range(expected or 0)) - set(clients)) if expected else "all"
            raise UserError(f"only {len(clients)} nodes joined within {wait:.0f} s; missing clients: {missing}")
        if not complete:
            time.sleep(0.5)
    hashes = {c["partition-hash"] for c in clients.values()}
    if len(hashes) != 1:
        raise UserError(f"the nodes hold partitions of different federations (hashes {sorted(hashes)})")
    return dict(sorted(clients.items()))


def global_stage(
    nodes: Nodes,
    cfg: Config,
    cfg_record: ConfigRecord,
    weights: Weights,
    params: frozenset[str],
) -> tuple[Weights, list[dict[str, Any]], StageStats]:
    """The rounds of cfg.federated.algorithm through the one round driver, with Flower nodes as the transport.

    Same schedule, same dropout draws, updates in client-id order into the same server_round as
    in-process; a node that fails or stays silent is left out of its round (recorded as missing),
    the round goes on with the others.
    """
    algorithm = ALGORITHMS[cfg.federated.algorithm]

    def send(rnd: int, active: list[int], weights: Weights, payload: State) -> dict[int, ClientUpdate]:
        content = {
            "pftlab": ConfigRecord({**cfg_record, "round": rnd}),
            "arrays": ArrayRecord.from_torch_state_dict(weights),
            "payload": ArrayRecord.from_torch_state_dict(payload),
        }
        return {
            c: ClientUpdate(
                steps.of_type(r.content["arrays"], ArrayRecord).to_torch_state_dict(),
                int(steps.scalar(r.content["metrics"]["num-examples"])),
                float(steps.scalar(r.content["metrics"]["loss"])),
                steps.of_type(r.content["extra"], ArrayRecord).to_torch_state_dict(),
            )
            for c, r in nodes.ask("train", active, content, rnd).items()
        }

    weights, stats, log = drive_rounds(algorithm, weights, params, len(nodes.clients), cfg.federated, cfg.seed, send)
    return weights, [r.as_dict() for r in log], stats


def run_federation(grid: Grid, run_config: dict[str, Any]) -> dict[str, Any]:
    """The whole pftlab pipeline over Flower nodes; writes the run directory given as run config `run-dir`."""
    t_start = time.perf_counter()
    cfg = steps.config_from_json(str(run_config["config-json"]))
    steps.check_methods(cfg)
    out = Path(str(run_config["run-dir"]))
    timeout = float(run_config.get("round-timeout", 0)) or None
    threads = set_threads(cfg.runtime.threads)
    cfg_record = ConfigRecord({"config": steps.config_json(cfg)})
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    clients = discover(grid, cfg_record, float(run_config.get("nodes-timeout", 120)), timeout)
    first = next(iter(clients.values()))
    shape, num_classes = tuple(json.loads(first["input-shape"])), int(first["num-classes"])
    model = build_model(cfg.model, shape, num_classes, cfg.seed)
    weights = steps.clone(model.state_dict())
    params = frozenset(n for n, _ in model.named_parameters())
    timings["discover"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    nodes = Nodes(grid, clients, timeout)
    weights, rounds, stats = global_stage(nodes, cfg, cfg_record, weights, params)
    timings["global"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    content = {"pftlab": cfg_record, "arrays": ArrayRecord.from_torch_state_dict(weights)}
    personal = nodes.ask("train.personalize", list(clients), content)
    chosen, searched = choices(nodes, cfg, cfg_record, personal, clients)
    timings["personalize"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    # every node scores the global model and every personalized model (its own included) on its test split
    models: dict[str, Any] = {
        "pftlab": cfg_record,
        f"model/{steps.GLOBAL_MODEL}": ArrayRecord.from_torch_state_dict(weights),
    }
    # a model two rules both chose (the same record) is sent and scored once, under the first name
    sent_as: dict[tuple[int, int], str] = {}  # (client, id of the record) -> the name it is sent under
    source: dict[tuple[str, int], str] = {}  # (name, client) -> the name whose hits it reads
    for name, by_client in chosen.items():
        for cid, record in by_client.items():
            source[name, cid] = sent_as.setdefault((cid, id(record)), name)
            if source[name, cid] == name:
                models[f"model/{name}/{cid}"] = record
    scored = {c: dict(r.content["metrics"]) for c, r in nodes.ask("evaluate", sorted(personal), models).items()}
    timings["evaluate"] = time.perf_counter() - t0

    kept = sorted(set(personal) & set(scored))  # clients whose model and test split both took part
    if len(kept) < 2:
        raise UserError(f"cross-site evaluation needs >= 2 clients; only {kept} answered")
    sizes = np.array([int(steps.scalar(scored[j]["n-test"])) for j in kept])
    global_row = np.array([int(steps.scalar(scored[j][f"hits/{steps.GLOBAL_MODEL}"])) for j in kept])
    correct = {steps.GLOBAL_MODEL: np.tile(global_row, (len(kept), 1))}
    for name in chosen:
        correct[name] = np.array(
            [[int(steps.scalar(scored[j][f"hits/{source[name, i]}/{i}"])) for j in kept] for i in kept]
        )
    searched = {name: [r for r in records if r["client"] in kept] for name, records in searched.items()}

    out.mkdir(parents=True, exist_ok=True)
    save_weights(out / "global.safetensors", weights)
    missing = sorted(set(clients) - set(kept))
    federation = {
        "engine": "flower",
        "nodes": {str(cid): c["node"] for cid, c in clients.items()},
        "global_stage": stats.as_dict(),
        "rounds": rounds,
        "missing_in_personalization": sorted(set(clients) - set(personal)),
        "missing_in_evaluation": sorted(set(personal) - set(scored)),
        "missing": nodes.events,  # every message a client's node did not answer, and why
    }
    write_json(out / "flower.json", federation)
    run_info = {
        "pftlab": __version__,
        "torch": torch.__version__,
        "engine": "flower",
        "threads": threads,
        "seconds": {k: round(v, 3) for k, v in {**timings, "total": time.perf_counter() - t_start}.items()},
    }
    extra = {}
    if nodes.events:
        extra["missing_clients"] = missing_summary(nodes.events, rounds, missing, kept)
    fed = shape_only(clients, kept)
    summary = write_results(out, cfg, fed, correct, sizes, run_info, searched or None, extra=extra or None)
    # A Flower run is never reused (the nodes hold the data), but its files verify like any run's
    # (`pftlab.Results.load`); its key names the engine and the config.
    key_config = config_hash({"engine": "flower", "config": cfg.resolved()})
    write_manifest(out, key_config, {"engine": "flower", "config": key_config}, {"pftlab": __version__})
    return summary


def choices(
    nodes: Nodes,
    cfg: Config,
    cfg_record: ConfigRecord,
    personal: dict[int, Message],
    clients: dict[int, dict[str, Any]],
) -> tuple[dict[str, dict[int, ArrayRecord]], dict[str, list[dict[str, Any]]]]:
    """Per reported name (`<method>`, `<method>@<rule>`): each client's chosen model, and the choice
    records (grid methods only), in the in-process run's order.

    A node that could choose alone sent its model and a record per rule. For the cross-site rule
    it sent every grid point's model and own validation accuracy; the other nodes score those in
    a validation round, and the server keeps each client's best point by each rule
    (`pftlab.experiment.runner.keep_best`, the in-process choice)."""
    rules, order = cfg.choice.rules, sorted(clients)  # the pool spans every client, as in-process
    cross = [m for m in cfg.personalize.methods if steps.cross_site(cfg, m)]
    scores = validation_round(nodes, cfg_record, personal, clients, cfg.choice.pool_images, cfg.seed) if cross else {}
    models: dict[str, dict[int, ArrayRecord]] = {}
    searched: dict[str, list[dict[str, Any]]] = {}
    for method in cfg.personalize.methods:
        for cid in sorted(personal):
            content = personal[cid].content
            if method not in cross:
                text = dict(steps.of_type(content["chosen"], ConfigRecord)).get(method)
                records = json.loads(str(text)) if text is not None else {}
                model = steps.of_type(content[f"model/{method}"], ArrayRecord)  # one record for every rule
                for rule in rules:
                    models.setdefault(named(method, rule, rules), {})[cid] = model
                    if records:
                        searched.setdefault(named(method, rule, rules), []).append(records[rule])
                continue
            own = json.loads(str(steps.of_type(content["own"], ConfigRecord)[method]))
            best: dict[str, Pick] = {}
            for g, params in enumerate(cfg.search_grid(method)):
                key = f"candidate/{method}/{g}"
                weights = steps.of_type(content[key], ArrayRecord).to_torch_state_dict() if key in content else "failed"
                accs = np.array([scores.get((method, cid, g, j), np.nan) for j in order])
                keep_best(
                    best,
                    cfg,
                    g,
                    params,
                    weights,
                    np.nan if own[g] is None else own[g],
                    others_mean(accs, order.index(cid)),
                )
            records_of: dict[int, ArrayRecord] = {}  # grid point -> its record: one per point, for every rule
            for rule in rules:
                pick = best[rule]
                if isinstance(pick.weights, str):  # not reached: a node whose every point failed fails its reply
                    raise FloatingPointError(f"client {cid}: {method}: no grid point trained")
                if pick.index not in records_of:
                    records_of[pick.index] = ArrayRecord.from_torch_state_dict(pick.weights)
                models.setdefault(named(method, rule, rules), {})[cid] = records_of[pick.index]
                searched.setdefault(named(method, rule, rules), []).append(pick.record(cid, rule))
    return models, searched


def validation_round(
    nodes: Nodes,
    cfg_record: ConfigRecord,
    personal: dict[int, Message],
    clients: dict[int, dict[str, Any]],
    pool_images: int,
    seed: int,
) -> dict[tuple[str, int, int, int], float]:
    """(method, owner, grid point, scoring client) -> accuracy of the owner's candidate on the scoring
    client's share of the validation pool: the in-process pool's images (`ValidationPool.picks`
    over every client, from the split sizes they reported). Every client's node scores, its own
    personalization failed or not (in-process its validation images stay in the pool too); a
    node that does not answer leaves its share out of every objective (flower.json names it)."""
    order = sorted(clients)
    picks = ValidationPool.picks([int(steps.scalar(clients[c]["n-val"])) for c in order], pool_images, seed)
    content: dict[str, Any] = {
        "pftlab": cfg_record,
        "pool": ConfigRecord({f"picks/{c}": json.dumps(p.tolist()) for c, p in zip(order, picks, strict=True)}),
    }
    for cid in sorted(personal):
        for name, record in personal[cid].content.items():
            if name.startswith("candidate/"):
                _, method, g = name.split("/")
                content[f"candidate/{method}/{cid}/{g}"] = record
    out: dict[tuple[str, int, int, int], float] = {}
    for j, reply in nodes.ask("evaluate.validate", order, content).items():
        for key, value in dict(reply.content["metrics"]).items():
            if key.startswith("accuracy/"):
                _, method, owner, g = key.split("/")
                out[method, int(owner), int(g), j] = float(steps.scalar(value))
    return out


def missing_summary(
    events: list[dict[str, Any]], rounds: list[dict[str, Any]], missing: list[int], kept: list[int]
) -> dict[str, Any]:
    """summary.json's record of the clients whose nodes did not answer (node ids, which are random, in flower.json)."""
    first: dict[int, dict[str, Any]] = {}
    for e in events:
        first.setdefault(e["client"], e)
    return {
        "rounds": {str(r["round"]): r["missing"] for r in rounds if r["missing"]},
        "personalization": sorted({e["client"] for e in events if e["message"] == "train.personalize"}),
        "evaluation": sorted({e["client"] for e in events if e["message"] == "evaluate"}),
        # the cross-site choice's validation round: these clients' validation images scored no candidate
        "validation": sorted({e["client"] for e in events if e["message"] == "evaluate.validate"}),
        "matrix": missing,  # left out of the matrices and of every metric
        "matrix_clients": kept,
        "first_missed": {
            str(c): {"message": e["message"], "round": e["round"], "why": e["why"]} for c, e in sorted(first.items())
        },
    }


def shape_only(clients: dict[int, dict[str, Any]], kept: list[int]) -> FederatedData:
    """A FederatedData with the nodes' split sizes, domains and client ids but no samples, for the run directory."""

    def empty(n: int) -> Dataset:
        return Dataset(np.empty((int(n), 0), np.float32), np.zeros(int(n), np.int64), int(first["num-classes"]))

    first = clients[kept[0]]
    return FederatedData(
        name=str(first["benchmark"]),
        clients=[
            ClientData(
                k,
                empty(clients[k]["n-train"]),
                empty(clients[k]["n-val"]),
                empty(clients[k]["n-test"]),
                str(clients[k]["domain"]),
            )
            for k in kept  # their own ids: a missing client leaves a gap
        ],
        num_classes=int(first["num-classes"]),
        input_shape=tuple(json.loads(first["input-shape"])),
        partition_hash=str(first["partition-hash"]),
        partition=[json.loads(str(clients[k]["partition"])) for k in kept],
    )
