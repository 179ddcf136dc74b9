"""Special functions NumPy lacks: the error function, for the exact GELU.

:func:`erf` and :func:`erfc` are vectorised from W. J. Cody's rational
Chebyshev approximations, accurate to a few ulp in float64, and computed block
by block in place. :func:`erfc_single` is a one-formula erfc to single
precision, the float32 path of the exact GELU.
"""

from __future__ import annotations

import numpy as np

from nnscratch.core.functional import bounded

INV_SQRT_PI = 0.5641895835477563  # 1 / sqrt(pi)

# W. J. Cody, "Rational Chebyshev approximations for the error function",
# Math. Comp. 23 (1969) 631-637, as in his SPECFUN routine CALERF (netlib).
# Highest power first, the leading denominator coefficient being 1.
# |x| <= 0.46875:  erf(x) = x * P(x**2) / Q(x**2)
_ERF_NUM = (
    1.85777706184603153e-1,
    3.16112374387056560e00,
    1.13864154151050156e02,
    3.77485237685302021e02,
    3.20937758913846947e03,
)
_ERF_DEN = (
    1.0,
    2.36012909523441209e01,
    2.44024637934444173e02,
    1.28261652607737228e03,
    2.84423683343917062e03,
)
# 0.46875 < |x| <= 4:  erfc(x) = exp(-x**2) * P(x) / Q(x)
_ERFC_MID_NUM = (
    2.15311535474403846e-8,
    5.64188496988670089e-1,
    8.88314979438837594e00,
    6.61191906371416295e01,
    2.98635138197400131e02,
    8.81952221241769090e02,
    1.71204761263407058e03,
    2.05107837782607147e03,
    1.23033935479799725e03,
)
_ERFC_MID_DEN = (
    1.0,
    1.57449261107098347e01,
    1.17693950891312499e02,
    5.37181101862009858e02,
    1.62138957456669019e03,
    3.29079923573345963e03,
    4.36261909014324716e03,
    3.43936767414372164e03,
    1.23033935480374942e03,
)
# |x| > 4:  erfc(x) = exp(-x**2) / x * (1/sqrt(pi) - z * P(z) / Q(z)), z = 1/x**2
_ERFC_FAR_NUM = (
    1.63153871373020978e-2,
    3.05326634961232344e-1,
    3.60344899949804439e-1,
    1.25781726111229246e-1,
    1.60837851487422766e-2,
    6.58749161529837803e-4,
)
_ERFC_FAR_DEN = (
    1.0,
    2.56852019228982242e00,
    1.87295284992346047e00,
    5.27905102951428412e-1,
    6.05183413124413191e-2,
    2.33520497626869185e-3,
)
_ERF_SMALL = 0.46875
_ERFC_MIDDLE_END = 4.0
# erfc(27.3) is below the smallest float64; capping |x| here changes no
# result and keeps x**2 (and 16 x in float32) from overflowing.
_ERF_CAP = 30.0
# Bytes per row of a block: 32K float64 or 64K float32 elements. Every step
# works in place on block-sized arrays, which stay in the CPU cache; a fresh
# multi-megabyte temporary per NumPy operation (page faults and all) made the
# whole-array version ~20x slower. Large enough that the ~30-60 NumPy calls
# per block cost little (float32 GELU: 4.0 ms a million elements at 32K
# elements a block, 3.5 at 64K).
_BLOCK_BYTES = 1 << 18


def block_elements(dtype: np.dtype) -> int:
    """Elements per block of :func:`by_blocks` for arrays of ``dtype``."""
    return _BLOCK_BYTES // np.dtype(dtype).itemsize


def _horner(coefficients: tuple[float, ...], z: np.ndarray, out: np.ndarray) -> None:
    """``out = P(z)``, ``coefficients`` highest power first, in place.

    Python-float coefficients keep a float32 ``z`` in float32.
    """
    np.multiply(z, coefficients[0], out=out)
    out += coefficients[1]
    for coefficient in coefficients[2:]:
        out *= z
        out += coefficient


def _exp_minus_square(y: np.ndarray, out: np.ndarray, a: np.ndarray) -> None:
    """``out = exp(-y**2)`` without the rounding error of ``y**2`` (Cody's trick).

    ``y**2`` carries a relative error ``eps``, which ``exp`` turns into an
    absolute one of ``eps * y**2`` in the exponent. Splitting ``y = a + d``
    with ``a`` a multiple of 1/16 makes ``a**2`` exact and leaves the small,
    accurately computed ``(y - a)(y + a) = y**2 - a**2``. ``a`` is scratch.
    """
    np.multiply(y, 16.0, out=a)
    np.trunc(a, out=a)
    a /= 16.0
    np.add(y, a, out=out)  # y + a
    out *= a - y  # -(y - a)(y + a)
    a *= a
    np.negative(a, out=a)  # -a**2, exact
    np.exp(a, out=a)
    np.exp(out, out=out)
    out *= a


def _erf_and_erfc_parts(
    y: np.ndarray, near: np.ndarray, tail: np.ndarray, work: np.ndarray
) -> None:
    """For ``0 <= y <= 30`` (NaN allowed): ``near = erf(y)``, right where
    ``y <= 0.46875``, and ``tail = erfc(y)``, right where ``y > 0.46875``.

    Each branch runs on the whole block, on an input clipped to its range
    (neither can divide by 0), and one that no element of the block needs is
    skipped. Selecting afterwards is far cheaper than gathering each branch's
    elements: a boolean index costs ~10 ns an element on a mixed mask.
    ``work`` is scratch of shape ``(4, y.size)``.
    """
    w0, w1, w2, w3 = work
    # |y| <= 0.46875: erf(y) = y * P(y**2) / Q(y**2)
    np.minimum(y, _ERF_SMALL, out=w0)
    np.multiply(w0, w0, out=w1)
    _horner(_ERF_NUM, w1, out=near)
    near *= w0
    _horner(_ERF_DEN, w1, out=w2)
    near /= w2
    largest = y.max()
    if largest <= _ERF_SMALL:  # False for NaN: then every branch runs
        return
    # 0.46875 < y <= 4: erfc(y) = exp(-y**2) * P(y) / Q(y)
    np.clip(y, _ERF_SMALL, _ERFC_MIDDLE_END, out=w0)
    _horner(_ERFC_MID_NUM, w0, out=tail)
    _horner(_ERFC_MID_DEN, w0, out=w1)
    tail /= w1
    if not largest <= _ERFC_MIDDLE_END:
        # y > 4: erfc(y) = exp(-y**2) / y * (1/sqrt(pi) - z P(z) / Q(z)), z = 1/y**2
        np.maximum(y, _ERFC_MIDDLE_END, out=w0)
        np.multiply(w0, w0, out=w1)
        np.divide(1.0, w1, out=w1)
        _horner(_ERFC_FAR_NUM, w1, out=w2)
        w2 *= w1
        _horner(_ERFC_FAR_DEN, w1, out=w3)
        w2 /= w3
        np.subtract(INV_SQRT_PI, w2, out=w2)
        w2 /= w0
        np.copyto(tail, w2, where=y > _ERFC_MIDDLE_END)
    # The ratios are exp(y**2) * erfc(y); exp(-y**2) underflows quietly to 0
    # beyond y ~ 27, which is erfc's value there in float64.
    _exp_minus_square(y, w0, w1)
    tail *= w0


def _reflect(upper_tail: np.ndarray, x: np.ndarray) -> None:
    """``erfc(-y) = 2 - erfc(y)``: turn ``erfc(|x|)`` into ``erfc(x)`` in place.

    Branch-free, ``-erfc(|x|) + 2`` where ``x`` has its sign bit set (``-0.0``
    included: ``2 - erfc(0) = 1``); a ufunc's ``where=`` is ~20x slower.
    """
    np.copysign(upper_tail, x, out=upper_tail)
    negative = np.signbit(x)
    # Two bool additions (True counts 1) keep the dtype of upper_tail.
    upper_tail += negative
    upper_tail += negative


def by_blocks(compute, *arrays: np.ndarray, scratch_rows: int = 0) -> np.ndarray:
    """``compute`` applied elementwise, one cache-sized block at a time.

    ``compute(out, scratch, *blocks)`` fills ``out`` from the same 1-D block
    of every array in ``arrays`` (all of one shape), using ``scratch`` of
    shape ``(scratch_rows, block size)`` for its intermediate results. Every
    pass then reads and writes memory that is still in the cache; on whole
    multi-megabyte arrays each of the ~30-60 NumPy calls of a special function
    streams through main memory instead (2-20x slower). The result has the
    shape of ``arrays[0]`` and its floating dtype (float64 for integers).
    """
    first = np.asarray(arrays[0])
    floating = np.issubdtype(first.dtype, np.floating)
    dtype = first.dtype if floating else np.dtype(np.float64)
    # (...) -> (size,): views when the arrays are contiguous.
    flats = [np.ascontiguousarray(a, dtype=dtype).reshape(-1) for a in arrays]
    result = np.empty_like(flats[0])
    # Allocated once and reused by every block: a fresh allocation per block
    # would page-fault its memory in again each time.
    block = block_elements(dtype)
    scratch = np.empty((scratch_rows, min(block, result.size)), dtype=dtype)
    for start in range(0, result.size, block):
        stop = min(start + block, result.size)
        blocks = [flat[start:stop] for flat in flats]
        compute(result[start:stop], scratch[:, : stop - start], *blocks)
    return result.reshape(first.shape)


ERF_SCRATCH_ROWS = 7
"""Rows of scratch that :func:`erf_block` and :func:`erfc_block` use."""

ERFC_NONNEGATIVE_SCRATCH_ROWS = 5
"""Rows of scratch that :func:`erfc_nonnegative_block` uses."""

ERFC_SINGLE_SCRATCH_ROWS = 2
"""Rows of scratch that :func:`erfc_single_block` uses."""

ERFC_SINGLE_NONNEGATIVE_SCRATCH_ROWS = 1
"""Rows of scratch that :func:`erfc_single_nonnegative_block` uses."""


def erf_block(out: np.ndarray, scratch: np.ndarray, x: np.ndarray) -> None:
    """``out = erf(x)`` for one block; ``ERF_SCRATCH_ROWS`` rows of scratch."""
    y, near, tail = scratch[:3]
    _erf_and_erfc_parts(capped_abs(x, out=y), near, tail, scratch[3:])
    np.subtract(1.0, tail, out=out)
    np.copyto(out, near, where=y <= _ERF_SMALL)
    np.copysign(out, x, out=out)  # erf is odd


def erfc_block(out: np.ndarray, scratch: np.ndarray, x: np.ndarray) -> None:
    """``out = erfc(x)`` for one block; ``ERF_SCRATCH_ROWS`` rows of scratch."""
    y = scratch[0]
    erfc_nonnegative_block(out, scratch[1:], capped_abs(x, out=y))
    _reflect(out, x)


def erfc_nonnegative_block(
    out: np.ndarray, scratch: np.ndarray, y: np.ndarray, half: bool = False
) -> None:
    """``out = erfc(y)``, or ``erfc(y) / 2`` with ``half``, for one block of
    ``0 <= y <= 30`` (NaN allowed); ``ERFC_NONNEGATIVE_SCRATCH_ROWS`` rows."""
    near = scratch[0]
    _erf_and_erfc_parts(y, near, out, scratch[1:ERFC_NONNEGATIVE_SCRATCH_ROWS])
    np.subtract(1.0, near, out=near)  # erfc = 1 - erf near zero
    np.copyto(out, near, where=y <= _ERF_SMALL)
    if half:
        out *= 0.5


def capped_abs(x: np.ndarray, out: np.ndarray, cap: float = _ERF_CAP) -> np.ndarray:
    """``min(|x|, cap)`` into ``out`` (NaN stays NaN), two in-place passes."""
    np.abs(x, out=out)
    return bounded(np.minimum, out, cap, out=out)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function ``2/sqrt(pi) * integral_0^x exp(-t**2) dt``, elementwise.

    Cody's approximations: within a few ulp of ``math.erf`` in float64 (the
    tests check a relative error below 1e-15); a float32 ``x`` stays float32.

    Examples
    --------
    >>> erf(np.array([-1000.0, 0.0, 1.0]))
    array([-1.        ,  0.        ,  0.84270079])
    """
    return by_blocks(erf_block, x, scratch_rows=ERF_SCRATCH_ROWS)


def erfc(x: np.ndarray) -> np.ndarray:
    """``1 - erf(x)`` elementwise, with full relative precision for large ``x``.

    Examples
    --------
    >>> erfc(np.array([-1000.0, 0.0, 10.0]))
    array([2.00000000e+00, 1.00000000e+00, 2.08848758e-45])
    """
    return by_blocks(erfc_block, x, scratch_rows=ERF_SCRATCH_ROWS)


# Numerical Recipes' erfcc (Press et al., 2nd ed., section 6.2): a Chebyshev
# fit of log(erfc(z) / t) - (-z**2) in t = 1 / (1 + z/2), relative error below
# 1.2e-7 for every z >= 0. Highest power first.
_ERFC_SINGLE = (
    0.17087277,
    -0.82215223,
    1.48851587,
    -1.13520398,
    0.27886807,
    -0.18628806,
    0.09678418,
    0.37409196,
    1.00002368,
    -1.26551223,
)
# The same fit in s = t / 2 = 1 / (2 + z): the coefficient of s**k is that of
# t**k times 2**k. Scaling by powers of two is exact, so Horner's rule gives
# the same P bitwise, and s * exp(-z**2 + P) is erfc(z) / 2 with no pass to
# halve it.
_HALF_ERFC_SINGLE = tuple(
    coefficient * 2.0 ** (len(_ERFC_SINGLE) - 1 - k)
    for k, coefficient in enumerate(_ERFC_SINGLE)
)


def erfc_single(x: np.ndarray) -> np.ndarray:
    """``erfc(x)`` to single precision: one exp, one division, no branches.

    ``erfc(z) = t * exp(-z**2 + P(t))``, ``t = 1 / (1 + z/2)`` for ``z = |x|``
    (Numerical Recipes' ``erfcc``), and ``erfc(-z) = 2 - erfc(z)``. The fit's
    relative error is below 1.2e-7 everywhere, also far in the tail; in float32
    the rounding of ``z**2`` adds up to ~1e-6 relative beyond ``z ~ 4``. About
    30 in-place passes instead of :func:`erfc`'s ~80: the float32 path of the
    exact GELU. A float32 ``x`` stays float32.

    Examples
    --------
    >>> erfc_single(np.array([-1.0, 0.0, 3.0], dtype=np.float32))
    array([1.8427007e+00, 1.0000000e+00, 2.2090497e-05], dtype=float32)
    """
    return by_blocks(erfc_single_block, x, scratch_rows=ERFC_SINGLE_SCRATCH_ROWS)


def erfc_single_block(out: np.ndarray, scratch: np.ndarray, x: np.ndarray) -> None:
    """``out = erfc_single(x)``, one block; ``ERFC_SINGLE_SCRATCH_ROWS`` rows."""
    z = scratch[0]
    capped_abs(x, out=z)  # capped: z**2 cannot overflow
    erfc_single_nonnegative_block(out, scratch[1:], z)
    _reflect(out, x)


def erfc_single_nonnegative_block(
    out: np.ndarray, scratch: np.ndarray, z: np.ndarray, half: bool = False
) -> None:
    """``out = erfc_single(z)``, or half of it with ``half``, for one block of
    ``0 <= z <= 30`` (NaN allowed), overwriting ``z``;
    ``ERFC_SINGLE_NONNEGATIVE_SCRATCH_ROWS`` rows."""
    t = scratch[0]
    np.add(z, 2.0, out=t)
    # t = 2 / (2 + z) = 1 / (1 + z/2) in (0, 1], the same value bitwise in
    # two passes instead of three; with half, t / 2 = 1 / (2 + z).
    np.divide(1.0 if half else 2.0, t, out=t)
    _horner(_HALF_ERFC_SINGLE if half else _ERFC_SINGLE, t, out=out)
    z *= z
    out -= z  # P(t) - z**2
    np.exp(out, out=out)
    out *= t
