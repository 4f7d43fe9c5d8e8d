"""ZeRO stages 1 and 2: the optimiser state, then the gradients, sharded across the ranks.

Plain data parallelism keeps P identical copies of everything. For Adam that is, per parameter
of ``n`` numbers: the weights (n), the gradient (n) and two moments ``m``, ``v`` (2n) -- the
moments are half of it, and every rank holds the same ones. ZeRO (Rajbhandari et al., 2020)
notices that rank r only *needs* the moments of the parameters it updates. Stage 1::

    owner(p) = one rank per parameter, balanced by size       (partition_parameters)
    grads    = Allreduce(mean)              # as in plain DDP: every rank has the mean gradient
    rank r:  Adam step on the parameters it owns only         # m, v exist only for those
    params   = Allgatherv(each rank's updated parameters)     # everyone has every weight again

Stage 2 (``zero2.py``) notices next that rank r only needs the *gradients* of its parameters
too: instead of the Allreduce, each gradient is reduced to its owner alone (``Reduce(root=
owner)``, one per owner-aligned bucket), the owner divides by P, and the others drop theirs::

    for each bucket of owner r:  g = Reduce(SUM, root=r)(g_0, ..., g_{P-1}) / P    # on r only
    ||G||^2 = Allreduce(SUM)(each rank's ||g_j||^2 of its own j)   # the global norm, for clipping
    rank r:  clip its gradients by ||G||, Adam step on its parameters; then Allgatherv as above

Memory per rank, for Adam over a model of n numbers (without the activations)::

                   params   grads    m, v      total
    plain DDP        n        n       2n        4n
    ZeRO-1           n        n       2n/P      2n + 2n/P
    ZeRO-2           n        n/P     2n/P      n + 3n/P       (P = 2: 2.5n instead of 4n)

(ZeRO-2's n/P is what a rank holds after the reduction; the backward itself still produces the
whole local gradient, see ``zero2.py``.) Each update is the same computation on the same numbers
as plain DDP, so the parameters are bit-identical to it (tested on 2 ranks). The price is one
extra collective per step (the parameter all-gather, the size of the model).

How stage 1 works here, in one idea: our optimisers create a parameter's state lazily, at its
first update (``Adam._update``). ``step`` hides the gradients of the parameters this rank does
not own, so the wrapped optimiser never updates them and never allocates their state. (With
stage 2 there is nothing to hide: the others' gradients are gone already.)

Checkpoints: ``consolidate_state_dict(to=0)`` (every rank calls it) gathers the shards on rank 0,
whose ``state_dict()`` is then exactly the plain optimiser's, so a checkpoint written with ZeRO
(either stage) resumes without it, on any number of ranks, and the other way round.
``load_state_dict`` takes such a full state dict and keeps this rank's shard of it. The names
follow PyTorch's ``torch.distributed.optim.ZeroRedundancyOptimizer``.

Departure from the paper: parameters are owned whole, not in equal flat slices of one long
vector (as PyTorch's implementation does too), so the shards -- of the moments and, in stage 2,
of the gradients -- balance only as well as the parameter sizes allow (``partition_parameters``).
Stage 3 (the parameters sharded as well, gathered layer by layer for the forward and backward)
is not here.
"""

from __future__ import annotations

import time

import numpy as np

from ..autograd import enable_grad


def zero_stage(zero) -> int:
    """The ZeRO stage that ``zero`` names: 0 (or False) plain DDP, 1 (or True) the optimiser
    state sharded, 2 the gradients too; anything else is a one-line ``ValueError``."""
    if isinstance(zero, (bool, int, np.integer)) and zero in (0, 1, 2):
        return int(zero)
    raise ValueError(
        f"zero={zero!r} is not a ZeRO stage: use 0/False (plain DDP), 1/True (the optimiser "
        "state sharded) or 2 (the gradients too)"
    )


def zero_says(zero) -> str:
    """What a run's "data parallel: ..." line adds for ZeRO stage ``zero`` (empty for plain)."""
    return ["", ", optimiser state sharded (ZeRO-1)",
            ", optimiser state and gradients sharded (ZeRO-2)"][zero_stage(zero)]  # fmt: skip


def optimizer_state_bytes(optimizer) -> int:
    """Bytes of the state arrays an optimiser holds (its ``state``: moments, step buffers), the
    memory ZeRO-1 shares out; for a ``ZeroRedundancyOptimizer``, this rank's shard."""
    return sum(
        v.nbytes for s in optimizer.state.values() for v in s.values() if isinstance(v, np.ndarray)
    )


def partition_parameters(sizes: list[int], world_size: int) -> list[int]:
    """The owning rank of each parameter: largest first, each to the rank with least so far.

    Deterministic (ties go to the lower rank), so every rank computes the same plan.
    """
    load = [0] * world_size
    owner = [0] * len(sizes)
    for j in sorted(range(len(sizes)), key=lambda j: (-sizes[j], j)):
        r = min(range(world_size), key=lambda r: (load[r], r))
        owner[j] = r
        load[r] += sizes[j]
    return owner


class ZeroRedundancyOptimizer:
    """``ZeroRedundancyOptimizer(params, AdamW, comm, lr=..., ...)``: ``optimizer_class`` over
    ``params`` on every rank, with its state sharded (see the module docstring).

    ``comm``: an mpi4py communicator (``World.comm``). ``param_groups`` are the wrapped
    optimiser's (a scheduler sets their ``lr`` as usual); ``optim`` is the wrapped optimiser,
    whose ``state`` holds this rank's shard only. ``from_optimizer`` wraps one already built.
    From the first ``step`` on, the parameters' arrays are views into one flat buffer per dtype
    (the all-gather's; see ``_plan_gather``).
    """

    def __init__(self, params, optimizer_class, comm, **defaults):
        self._setup(optimizer_class(params, **defaults), comm)

    @classmethod
    def from_optimizer(cls, optimizer, comm) -> ZeroRedundancyOptimizer:
        """Shard an optimiser built the usual way; state it holds for others' parameters is
        dropped (every rank holds the same full copy before, as in plain DDP)."""
        zero = cls.__new__(cls)
        zero._setup(optimizer, comm)
        return zero

    def _setup(self, optimizer, comm) -> None:
        self.optim = optimizer
        self.comm = comm
        self.rank, self.world_size = comm.Get_rank(), comm.Get_size()
        # every parameter once (a tied weight is one), in the groups' order: the same on all ranks
        unique = {id(p): p for group in optimizer.param_groups for p in group["params"]}
        self.params = list(unique.values())
        self.owner = partition_parameters([p.data.size for p in self.params], self.world_size)
        self._owned = {id(p) for p, r in zip(self.params, self.owner) if r == self.rank}
        self._owner_of = {id(p): r for p, r in zip(self.params, self.owner)}
        self._consolidated = None
        self.gather_seconds = 0.0  # time inside the parameter all-gather (for the benchmark)
        self._gather_plans = None  # made at the first step (_plan_gather)
        self._drop_unowned_state()

    # ------------------------------------------------------------------ what the optimiser shows
    @property
    def param_groups(self) -> list[dict]:
        return self.optim.param_groups

    @property
    def state(self) -> dict:
        return self.optim.state

    @property
    def defaults(self) -> dict:
        return self.optim.defaults

    def owns(self, p) -> bool:
        return id(p) in self._owned

    def owner_of(self, p) -> int:
        """The rank that updates ``p`` (and, with ZeRO-2, receives its gradient)."""
        if id(p) not in self._owner_of:
            raise ValueError(
                f"a parameter of shape {tuple(p.data.shape)} is not in the optimiser: ZeRO-2 "
                "reduces each gradient to the rank that updates it, so it has no owner"
            )
        return self._owner_of[id(p)]

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optim.zero_grad(set_to_none)

    # ------------------------------------------------------------------ the step
    def step(self, closure=None):
        """Update this rank's parameters (the wrapped optimiser's rule), then all-gather them."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        hidden = []  # others' gradients, out of the wrapped optimiser's sight for this step
        for p in self.params:
            if p.grad is not None and id(p) not in self._owned:
                hidden.append((p, p.grad))
                p.grad = None
        try:
            self.optim.step()
        finally:
            for p, grad in hidden:
                p.grad = grad
        self._allgather_parameters()
        self._consolidated = None  # a gathered state dict is out of date after a step
        return loss

    def _plan_gather(self) -> list:
        """Per dtype: one flat buffer laid out rank by rank ([rank 0's | rank 1's | ...]), each
        rank's element count and offset in it, and the parameters, which from now on *are*
        views into it (PyTorch's ``parameters_as_bucket_view``): the all-gather writes the
        others' parameters in place, with no copy and no second model-sized buffer (which would
        cost as much memory as 2 ranks save)."""
        plans = []
        for dtype in dict.fromkeys(p.data.dtype for p in self.params):
            mine = [(p, r) for p, r in zip(self.params, self.owner) if p.data.dtype == dtype]
            mine.sort(key=lambda pr: pr[1])  # stable: by owner rank, then the groups' order
            counts = [0] * self.world_size
            for p, r in mine:
                counts[r] += p.data.size
            displs = [sum(counts[:r]) for r in range(self.world_size)]
            flat, places, offset = np.empty(sum(counts), dtype=dtype), [], 0
            for p, r in mine:
                view = flat[offset : offset + p.data.size].reshape(p.data.shape)
                view[...] = p.data
                p.data = view
                places.append((p, r, view))
                offset += p.data.size
            plans.append((flat, counts, displs, places))
        return plans

    def _allgather_parameters(self) -> None:
        """Every rank sends the parameters it owns and receives the rest: one ``Allgatherv``
        per dtype, in place in the flat buffer (this rank's part already sits at its offset)."""
        from mpi4py import MPI
        from mpi4py.util.dtlib import from_numpy_dtype

        plans = self._gather_plans
        if plans is None or any(  # first step, or a parameter changed dtype (model.to)
            p.data.dtype != view.dtype for _, _, _, places in plans for p, _, view in places
        ):
            plans = self._gather_plans = self._plan_gather()
        for flat, counts, displs, places in plans:
            for p, r, view in places:
                if p.data is not view:  # replaced since (model.to, a user's assignment):
                    if r == self.rank:  # keep its values, and make it the view again
                        view[...] = p.data
                    p.data = view
            start = time.perf_counter()
            self.comm.Allgatherv(MPI.IN_PLACE, [flat, counts, displs, from_numpy_dtype(flat.dtype)])
            self.gather_seconds += time.perf_counter() - start

    # ------------------------------------------------------------------ state dicts
    def consolidate_state_dict(self, to: int = 0) -> None:
        """Gather every rank's shard on rank ``to`` (a collective: every rank must call it);
        afterwards ``state_dict()`` on ``to`` is the plain optimiser's full state dict."""
        shard = self.optim.state_dict()  # global indices: the wrapped optimiser sees every param
        shards = self.comm.gather(shard["state"], root=to)  # (small: arrays pickled in memory)
        if self.rank != to:
            self._consolidated = None
            return
        state = {}
        for part in shards:
            state.update(part)  # disjoint: each parameter's state lives on its owner only
        self._consolidated = {"state": state, "param_groups": shard["param_groups"]}

    def state_dict(self) -> dict:
        """The full state dict gathered by ``consolidate_state_dict`` (on that rank only)."""
        if self._consolidated is None:
            raise RuntimeError(
                "ZeroRedundancyOptimizer.state_dict(): the state is sharded; call "
                f"consolidate_state_dict(to=...) on every rank first (rank {self.rank} holds no "
                "up-to-date consolidated state)"
            )
        return self._consolidated

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a full (plain optimiser's) state dict and keep this rank's shard of it."""
        self.optim.load_state_dict(state_dict)
        self._drop_unowned_state()
        self._consolidated = None

    def _drop_unowned_state(self) -> None:
        self.optim.state = {p: s for p, s in self.optim.state.items() if id(p) in self._owned}

    def __repr__(self) -> str:
        return (
            f"ZeroRedundancyOptimizer({type(self.optim).__name__}, rank {self.rank} of "
            f"{self.world_size}, owns {len(self._owned)} of {len(self.params)} parameters)"
        )
