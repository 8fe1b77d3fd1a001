"""The ClientApp: one SuperNode, one pftlab client; its data never leaves the node.

Message types (all carry the resolved pftlab config in ConfigRecord "pftlab"):
- query: who am I (client id, split sizes, partition hash), never samples;
- train: one round of the global stage from the weights in ArrayRecord "arrays";
- train.personalize: every configured personalization method, from the global weights: the
  chosen model, or for the cross-site rule every grid point's model and own validation accuracy;
- evaluate.validate (cross-site rule only): the accuracy of every other client's candidates on this
  node's share of the validation pool (the server says which images);
- evaluate: hits of the global and of every client's personalized model on this node's test split.

The node finds its data through node config: `partition-file=PATH` (written by `pftlab flower
export`), or `partition-id=K` (the simulation engine sets it): client K of the federation the
config describes, built on the node.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    ConfigRecordValues,
    Context,
    Message,
    MetricRecord,
    MetricRecordValues,
    RecordDict,
)
from flwr.clientapp import ClientApp
from torch import nn

from pftlab.core.errors import UserError
from pftlab.core.io import config_hash
from pftlab.data.benchmarks import build_federation
from pftlab.data.dataset import ClientData
from pftlab.experiment.config import Config
from pftlab.experiment.runner import set_threads
from pftlab.federated import ALGORITHMS, is_finite
from pftlab.integrations.flower import steps
from pftlab.integrations.flower.partition import client_from_federation, client_info, load_client
from pftlab.models import build_model

app = ClientApp()
CLIENT_STATE = "pftlab-client-state"  # in context.state: e.g. SCAFFOLD's control variate

# A simulation engine runs many virtual nodes in one worker process: build each federation once.
_FEDERATIONS: dict[str, Any] = {}
_CLIENTS: dict[tuple[str, str], tuple[ClientData, dict[str, str]]] = {}


def config_of(msg: Message) -> Config:
    cfg = steps.config_from_json(str(msg.content["pftlab"]["config"]))
    set_threads(cfg.runtime.threads)
    return cfg


def local_client(cfg: Config, context: Context) -> tuple[ClientData, dict[str, str]]:
    """This node's client: from its partition file, else partition-id of the configured federation."""
    node = context.node_config
    if "partition-file" in node:
        key = ("file", str(Path(str(node["partition-file"])).resolve()))
        if key not in _CLIENTS:
            _CLIENTS[key] = load_client(Path(key[1]))
        return _CLIENTS[key]
    if "partition-id" in node:
        data_key = config_hash({"data": cfg.data.resolved(), "seed": cfg.seed})
        key = (data_key, str(node["partition-id"]))
        if key not in _CLIENTS:
            if data_key not in _FEDERATIONS:
                _FEDERATIONS[data_key] = build_federation(cfg.data, cfg.seed)
            _CLIENTS[key] = client_from_federation(_FEDERATIONS[data_key], int(node["partition-id"]))
        return _CLIENTS[key]
    raise UserError("node config needs partition-file=PATH (from 'pftlab flower export') or partition-id=K")


def model_for(cfg: Config, meta: dict[str, str]) -> nn.Module:
    return build_model(cfg.model, tuple(json.loads(meta["input_shape"])), int(meta["num_classes"]), cfg.seed)


def _reply(msg: Message, **records: Any) -> Message:
    return Message(RecordDict(records), reply_to=msg)


@app.query()
def query(msg: Message, context: Context) -> Message:
    cfg = config_of(msg)
    client, meta = local_client(cfg, context)
    info: dict[str, ConfigRecordValues] = dict(client_info(client, meta))
    return _reply(msg, info=ConfigRecord(info))


@app.train()
def train(msg: Message, context: Context) -> Message:
    """One round of the configured global-stage algorithm: its own local_update, as in-process."""
    cfg = config_of(msg)
    client, meta = local_client(cfg, context)
    algorithm = ALGORITHMS[cfg.federated.algorithm]
    state = (
        steps.of_type(context.state[CLIENT_STATE], ArrayRecord).to_torch_state_dict()
        if CLIENT_STATE in context.state
        else {}
    )
    update = algorithm.local_update(
        model_for(cfg, meta),
        steps.of_type(msg.content["arrays"], ArrayRecord).to_torch_state_dict(),
        steps.of_type(msg.content["payload"], ArrayRecord).to_torch_state_dict(),
        client.train,
        cfg.federated,
        cfg.seed,
        int(steps.scalar(msg.content["pftlab"]["round"])),
        client.client_id,
        state,
    )
    if is_finite(update):  # what the server accepts; the in-process loop keeps the state of accepted updates
        context.state[CLIENT_STATE] = ArrayRecord.from_torch_state_dict(update.client_state)
    metrics = MetricRecord({"num-examples": update.num_examples, "loss": update.loss, "client-id": client.client_id})
    return _reply(
        msg,
        arrays=ArrayRecord.from_torch_state_dict(update.weights),
        extra=ArrayRecord.from_torch_state_dict(update.extra),
        metrics=metrics,
    )


@app.train("personalize")
def personalize(msg: Message, context: Context) -> Message:
    cfg = config_of(msg)
    client, meta = local_client(cfg, context)
    model, start = model_for(cfg, meta), steps.of_type(msg.content["arrays"], ArrayRecord).to_torch_state_dict()
    records: dict[str, Any] = {"metrics": MetricRecord({"client-id": client.client_id})}
    chosen: dict[str, ConfigRecordValues] = {}
    own: dict[str, ConfigRecordValues] = {}
    for method in cfg.personalize.methods:
        if steps.cross_site(cfg, method):  # the server chooses, once every node has scored the candidates
            points = steps.candidates(model, start, client, cfg, method)
            for g, (w, _) in enumerate(points):
                if not isinstance(w, str):
                    records[f"candidate/{method}/{g}"] = ArrayRecord.from_torch_state_dict(w)
            own[method] = json.dumps([None if isinstance(w, str) else acc for w, acc in points])
            continue
        weights, choice = steps.personalize(model, start, client, cfg, method)
        records[f"model/{method}"] = ArrayRecord.from_torch_state_dict(weights)
        if choice is not None:
            chosen[method] = json.dumps(choice)
    records["chosen"] = ConfigRecord(chosen)
    records["own"] = ConfigRecord(own)
    return _reply(msg, **records)


@app.evaluate("validate")
def validate(msg: Message, context: Context) -> Message:
    """The cross-site round: each other client's candidates scored on this node's share of the pool."""
    cfg = config_of(msg)
    client, meta = local_client(cfg, context)
    model = model_for(cfg, meta)
    picks = json.loads(str(msg.content["pool"][f"picks/{client.client_id}"]))
    metrics: dict[str, MetricRecordValues] = {"client-id": client.client_id}
    for name, record in msg.content.items():
        if name.startswith("candidate/") and picks:
            _, method, owner, g = name.split("/")
            if int(owner) != client.client_id:
                weights = steps.of_type(record, ArrayRecord).to_torch_state_dict()
                metrics[f"accuracy/{method}/{owner}/{g}"] = steps.pool_accuracy(model, weights, client.val, picks)
    return _reply(msg, metrics=MetricRecord(metrics))


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Score every model in the message on this node's test split: one column of each matrix."""
    cfg = config_of(msg)
    client, meta = local_client(cfg, context)
    model, pool = model_for(cfg, meta), steps.own_pool(client.test)
    metrics: dict[str, MetricRecordValues] = {"client-id": client.client_id, "n-test": len(client.test)}
    for name, record in msg.content.items():
        if name.startswith("model/"):
            weights = steps.of_type(record, ArrayRecord).to_torch_state_dict()
            metrics[f"hits/{name.removeprefix('model/')}"] = steps.hits(model, weights, pool)
    return _reply(msg, metrics=MetricRecord(metrics))
