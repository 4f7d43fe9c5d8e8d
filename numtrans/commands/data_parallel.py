"""What a command needs to run data parallel (``--ddp`` under ``mpirun -n P``), in one place.

``world_from_args`` starts MPI (or says in one line why it cannot), ``read_once`` reads the
input on rank 0 alone and sends it to the others, and ``job`` wraps the training so that ranks
> 0 stay quiet and one failing rank ends the job. Without ``--ddp`` each is a no-op: the command
runs as it does in one process. (``numtrans sft`` and ``numtrans dpo`` use them.)
"""

from __future__ import annotations

import contextlib


def world_from_args(args):
    """``None`` without ``--ddp``; with it the ranks of mpirun (a one-line error outside it, or
    for ``--zero`` without ``--ddp``). ``args`` has ``ddp``, ``zero`` and ``command``."""
    from ..distributed import init_world, require_ddp

    require_ddp(args.zero, args.ddp, "--zero", args.command)
    if not args.ddp:
        return None
    return init_world(command=args.command)


def read_once(world, read):
    """``read()`` here alone, or (data parallel) on rank 0, its result sent to every rank: a
    mistake in the input is then said once, not once per rank."""
    if world is None:
        return read()
    from ..distributed import share_from_main

    return share_from_main(world, read)


@contextlib.contextmanager
def job(world):
    """The training part of a command: as it is in one process; data parallel, the output of
    ranks > 0 silenced and one failing rank ending the job (instead of hanging the others)."""
    if world is None:
        yield
        return
    from ..distributed import abort_on_error, quiet_unless_main

    with abort_on_error(world), quiet_unless_main(world):
        yield
