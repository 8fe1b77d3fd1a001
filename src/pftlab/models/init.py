"""A pretrained start: `model.init = "PATH.safetensors"` loads given weights into the freshly built model.

The study's argument for LP-FT rests on good features before fine-tuning; a model trained from
scratch by 30 FedAvg rounds may not have them. `pftlab pretrain` makes such weights from data no
client holds; any safetensors file with the model's parameter names works too. The file must
pass its checksum (`load_weights`), and every tensor of the model must be in it with the same
shape: the first one that is missing or differs is named in one line. `init_head = false` keeps
the freshly initialised head (pretrained on other classes: only the backbone carries over).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from pftlab.core.errors import CorruptFile, UserError
from pftlab.core.io import load_weights


def load_init(model: nn.Module, path: str, keep_head: bool = True, head: str = "head") -> dict[str, str]:
    """Load `path` into `model` (checked first); what was loaded, for the run's record."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"model.init: no file at {path!r}; give a .safetensors file (e.g. from 'pftlab pretrain')")
    try:
        weights = load_weights(file)
    except CorruptFile as err:
        raise UserError(f"model.init: {err}") from None
    except (OSError, ValueError) as err:
        raise UserError(f"model.init: {path!r} is not a readable safetensors file ({err})") from None
    state = model.state_dict()
    wanted = {k: v for k, v in state.items() if keep_head or not k.startswith(head + ".")}
    for name, tensor in wanted.items():
        if name not in weights:
            have = ", ".join(sorted(weights)[:6])
            raise UserError(f"model.init: {path!r} has no tensor {name!r} that the model needs (it holds {have}, ...)")
        if tuple(weights[name].shape) != tuple(tensor.shape):
            hint = "; set model.init_head = false to keep a fresh head" if name.startswith(head + ".") else ""
            raise UserError(
                f"model.init: {name!r} is {tuple(weights[name].shape)} in {path!r} but {tuple(tensor.shape)} "
                f"in the model{hint}"
            )
    with torch.no_grad():
        for name, tensor in wanted.items():
            tensor.copy_(weights[name].to(tensor.dtype))
    return {"init": str(file), "init_head": str(keep_head)}
