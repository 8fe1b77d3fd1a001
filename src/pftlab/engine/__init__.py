"""How many clients' computations are run: the plain loop (`pftlab.train`) or batched (`batched`).

The data flow above does not change with the engine: both give each client's personalized
weights from the same recipe, data order and budget; the batched engine runs a chunk of
clients as one computation.
"""
