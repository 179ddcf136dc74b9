"""How many threads NumPy's BLAS uses for matrix products.

NumPy's BLAS (OpenBLAS in the PyPI wheels) starts one thread per core. On a
small machine that shares its cores with other work, fewer threads can be
faster: measure with ``benchmarks/run.py --threads N``. The environment
variables ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` set it for a whole
process (before NumPy is imported); this function changes it at run time.
"""

from __future__ import annotations

from nnscratch.core.validation import check_positive_int


def set_num_threads(n: int) -> None:
    """Limit the BLAS libraries NumPy loaded to ``n`` threads, from now on.

    Needs the small ``threadpoolctl`` package (``pip install threadpoolctl``),
    which finds the BLAS library inside the running process.

    Examples
    --------
    >>> before = get_num_threads()
    >>> set_num_threads(1)
    >>> get_num_threads()
    1
    >>> set_num_threads(before)
    """
    n = check_positive_int("n", n)
    _threadpool_api().threadpool_limits(limits=n, user_api="blas")


def get_num_threads() -> int:
    """The largest thread count among the BLAS libraries NumPy loaded."""
    infos = _threadpool_api().threadpool_info()
    return max(
        (info["num_threads"] for info in infos if info["user_api"] == "blas"), default=1
    )


def _threadpool_api():
    try:
        import threadpoolctl
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "set_num_threads needs threadpoolctl: pip install threadpoolctl "
            "(or set OPENBLAS_NUM_THREADS before starting Python)"
        ) from None
    import numpy  # noqa: F401  (load NumPy's BLAS before looking for it)

    return threadpoolctl
