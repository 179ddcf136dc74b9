"""Data-parallel training on MPI (the ``[mpi]`` extra: mpi4py and MPICH).

>>> from nnscratch.distributed import DataParallel    # doctest: +SKIP
>>> model.train(X, y, batch_size=256, distributed=DataParallel())  # doctest: +SKIP

run as ``mpiexec -n 4 python train.py``; see :class:`DataParallel`.
"""

from nnscratch.distributed.data_parallel import DataParallel

__all__ = ["DataParallel"]
