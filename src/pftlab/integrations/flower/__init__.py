"""Flower (flwr 1.42) as the engine for real federations: `pip install 'pftlab[flower]'`.

`partition` and `steps` are plain pftlab code (no Flower import): what one node stores and
computes. `client_app` and `server_app` wrap them in Flower's Message API; `app` writes the
Flower App directory (`pftlab flower export`). See docs/flower.md.
"""
