"""Keeping the ranks identical: broadcast once at the start, then check with a hash.

Data parallelism rests on one invariant: **every rank holds the same parameters and the same
optimiser state**. Then the same averaged gradient gives the same update everywhere, and rank 0's
copy (the one it saves) is everyone's.

* ``broadcast_parameters``: at the start rank 0 sends its parameters to all (``MPI_Bcast``), so
  ranks that initialised differently (another seed, another library version) agree from step 0.
* ``state_digest`` / ``check_same_state``: a SHA-256 over every parameter, buffer and optimiser
  array (and the optimiser's scalars: step counts, learning rates), gathered from every rank and
  compared, at the start and before every checkpoint. A rank that drifted (a non-deterministic
  kernel, a bug that skipped its update) stops the run with the ranks that differ named, instead
  of rank 0 silently saving a model the others do not have.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np


def broadcast_parameters(params, comm, root: int = 0) -> None:
    """Overwrite every parameter's data with rank ``root``'s, in place (one ``Bcast`` each)."""
    for p in params:
        data = p.data if p.data.flags.c_contiguous else np.ascontiguousarray(p.data)
        comm.Bcast(data, root=root)
        if data is not p.data:
            p.data[...] = data


def state_digest(model, optimizer=None) -> str:
    """SHA-256 (hex) of the model's state_dict and the optimiser's state, in a fixed order.

    Bytes are hashed exactly (no rounding): two ranks agree only if they are bit-identical.
    """
    h = hashlib.sha256()

    def add(name: str, array) -> None:
        array = np.ascontiguousarray(array)
        h.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        h.update(array.tobytes())

    for name, array in sorted(model.state_dict().items()):
        add(name, array)
    if optimizer is not None:
        from ..optim import optimizer_state_to_flat

        arrays, meta = optimizer_state_to_flat(optimizer.state_dict())
        for name in sorted(arrays):
            add("optimizer." + name, arrays[name])
        h.update(json.dumps(meta, sort_keys=True, default=str).encode())
    return h.hexdigest()


def replicated_digest(model, optimizer=None) -> str:
    """``state_digest`` of what every rank must hold alike. With ZeRO-1 each rank keeps only its
    own shard of the optimiser state, by design: the hash then covers the parameters, buffers
    and the (replicated) hyperparameters; otherwise everything."""
    from .zero import ZeroRedundancyOptimizer

    if isinstance(optimizer, ZeroRedundancyOptimizer):
        groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
        return state_digest(model) + repr(groups)
    return state_digest(model, optimizer)


def check_same_state(comm, digest: str, where: str) -> None:
    """Gather every rank's ``digest``; raise ``RuntimeError`` on every rank if they differ.

    ``where`` names the moment (``"at the start"``, ``"before the step-500 checkpoint"``).
    """
    digests = comm.allgather(digest)
    if len(set(digests)) == 1:
        return
    groups: dict[str, list[int]] = {}
    for rank, d in enumerate(digests):
        groups.setdefault(d, []).append(rank)
    parts = [f"ranks {ranks} have {d[:12]}" for d, ranks in groups.items()]
    raise RuntimeError(
        f"the ranks' parameters and optimiser state differ {where} ({'; '.join(parts)}): "
        "data-parallel training needs them identical"
    )
