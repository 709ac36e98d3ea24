"""scipy's `kstwo.sf(x, n)` for many (x, n) at once, in compiled code (numba).

`kstwo.sf` is what `scipy.stats.ks_2samp` returns as its p-value outside its exact method (with
n = round(n1*n2/(n1+n2))). scipy evaluates it one element at a time in Python, choosing between
several methods (Simard and L'Ecuyer's selection, `scipy.stats._ksstats._kolmogn`); the slowest
are exact O(n) or O(n log n) computations that cost 10-100 ms per feature at n = 33,333. Here the
same selection runs in one compiled loop over all elements, with each method reproduced:

* outside the support, n*x <= 1 and n*x >= n - 1 (Ruben-Gambino), n*x^2 >= 370, and the
  Pelz-Good asymptotic series: the same floating-point operations in the same order as scipy
  (for n*x <= 1 at n <= 140, scipy's `np.prod` may group the product differently);
* `2 * smirnov(n, x)` (x >= 0.5, or n*x^2 in [2.2, 370) for n > 140, or above 4 for n <= 140):
  the same sum of Birnbaum-Tingey terms as scipy's C++ `smirnov`, but scipy computes every
  term from scratch (two double-double powers, ~1.2 us a term); here the terms come in blocks of
  `_ANCHOR_EVERY`: the first from scratch (double-double bases, libm `pow`), the others each the
  previous one times a ratio of elementary functions (so rounding cannot drift further than a
  block; the ratios' exponentials by a polynomial around the block's middle one, the binomial
  coefficients' integer products in vectorized loops), a block summed pairwise and added to a
  double-double total: about 5 ns a term;
* Durbin's matrix method (n*x^1.5 <= 1.4 at large n, n*x^2 <= 0.754693 for n <= 140): the
  matrix power is scipy's code compiled (`_dmtw_power`; its BLAS products may add in another
  order than numpy's); scipy then multiplies by n!/n^n in n steps, switching from float64 to
  long double once the value falls below 2^-128: the float64 steps are the same here, the rest
  runs in double-double arithmetic (about 106 bits, more than the long double's 64) as the
  product of the remaining integers over a power of n (`_dd_ratio_tail`). Within 4 ulp of
  scipy over the branch's whole range (tested), bit for bit at almost every point.
* Pomeranz's recursion (n <= 140 and n*x^2 in (0.754693, 4]): scipy's recursion, with its
  `np.convolve` calls written out as loops, up to n*x^2 = 3. numpy adds the products in another
  order (BLAS dot products), a few ulp of a cdf near 1, which past n*x^2 = 3 (sf below ~5e-3)
  exceed 1e-12 of the sf: there scipy itself is called. Such an N needs a window of at most ~141
  rows against a reference above 10,000 rows, and costs ~6 ms per feature in that band.

Equal to scipy to 1e-12 relative (the tests compare a grid over every branch limit): bit for
bit outside the support, for n*x >= n - 1 and n*x^2 >= 370 (asserted by the tests); on
Pelz-Good the operations are scipy's but its exp/cos are numpy's SIMD kernels, whose last bit
depends on the CPU (bit for bit on an Intel Xeon, within 1.4e-14 on an AMD EPYC); within 5e-14
on the Smirnov branch (tested), 5e-13 on the DMTW and Pomeranz branches; wherever the p-value
is subnormal (p < 2.2e-308) both are only as exact as subnormal numbers allow (the tests
compare those with an absolute tolerance of 1e-320).
"""

import math

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

from credit_drift.stats.numeric import in_threads

# Branch limits and constants of scipy.stats._ksstats (scipy 1.4-1.17).
_SMALL_N = 140
_DMTW_SMALL_LIMIT = 0.754693
_POMERANZ_LIMIT = 4.0
# Above this n*x^2 the Pomeranz sf (~5e-3 and below) is 1 - cdf with cdf near 1: the few ulp by
# which our sums differ from numpy's convolutions (BLAS dot products) exceed 1e-12 of the sf.
_POMERANZ_COMPILED_LIMIT = 3.0
_SMIRNOV_LOW, _SMIRNOV_HIGH = 2.2, 370.0
_DMTW_MAX_N, _DMTW_LIMIT = 100_000, 1.4
_MIN_LOG = -708.0
_E128 = 128
_EP128 = 2.0**128
_EM128 = 2.0**-128
# Values computed by numpy exactly as scipy's module computes them at import.
_SQRT2PI = float(np.sqrt(2 * np.pi))
_LOG_2PI = float(np.log(2 * np.pi))
_SQRT3 = float(np.sqrt(3))
_PI_SQUARED = float(np.pi**2)
_PI_FOUR = float(np.pi**4)
_PI_SIX = float(np.pi**6)
_STIRLING = np.array(
    [
        -2.955065359477124183e-2,
        6.4102564102564102564e-3,
        -1.9175269175269175269e-3,
        8.4175084175084175084e-4,
        -5.952380952380952381e-4,
        7.9365079365079365079e-4,
        -2.7777777777777777778e-3,
        8.3333333333333333333e-2,
    ]
)
# scipy's smirnov: log of the smallest subnormal (cephes MINLOG), its limit on n for the exact sum.
_CEPHES_MINLOG = -7.451332191019412076235e2
_SMIRNOV_MAX_COMPUTE_N = 1_000_000
_EPS = float(np.finfo(np.float64).eps)
# A term computed by recurrence is recomputed from scratch this often (a multiple of 32, see
# `_binomial_block`): the recurrence's rounding cannot drift further than a block (measured:
# within 1.3e-14 of scipy over random (n, x), against 3.7e-13 with anchors every 32 terms when
# the anchors' powers were computed by repeated squaring).
_ANCHOR_EVERY = 128
# `_exp_block` uses a polynomial where a block's exponents lie within this of their midpoint.
_EXP_SPREAD = 2.0**-6
# How far below the smallest double-double a power may fall before it is split (see _pow_scaled).
_SPLIT_LOG2 = -900.0

# What `_fill` leaves for Python to finish.
_DONE, _NEEDS_DMTW, _NEEDS_BRANCH_CHECK, _NEEDS_SCIPY = 0, 1, 2, 3


# == double-double arithmetic (Dekker / Knuth, products with a fused multiply-add) ================
@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c rounded once (LLVM's fma: the CPU's instruction, or libm's exact `fma` where
    the CPU has none)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return sig, codegen


@njit(cache=True, inline="always")
def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit(cache=True, inline="always")
def _quick_two_sum(a, b):
    s = a + b
    return s, b - (s - a)


@njit(cache=True, inline="always")
def _two_prod(a, b):
    # the product and its exact rounding error (the same pair as Dekker's split products,
    # which were exact for the same inputs, in 2 operations instead of 17)
    p = a * b
    return p, _fma(a, b, -p)


@njit(cache=True, inline="always")
def _dd_mul_d(hi, lo, b):
    p, e = _two_prod(hi, b)
    return _quick_two_sum(p, e + lo * b)


@njit(cache=True, inline="always")
def _dd_div_d(hi, lo, b):
    q1 = hi / b
    p, e = _two_prod(q1, b)
    s, f = _two_sum(hi, -p)
    f = (f - e) + lo
    return _quick_two_sum(q1, (s + f) / b)


@njit(cache=True, inline="always")
def _dd_mul_dd(ah, al, bh, bl):
    p, e = _two_prod(ah, bh)
    return _quick_two_sum(p, e + (ah * bl + al * bh))


@njit(cache=True, inline="always")
def _dd_add_d(hi, lo, b):
    s, e = _two_sum(hi, b)
    return _quick_two_sum(s, e + lo)


# == Smirnov's one-sided sum ===================================================================
@njit(cache=True, error_model="numpy")
def _binomial_block(m_num, m_den, his, los):
    """The products of the `_ANCHOR_EVERY` integers from m_num on and from m_den on, each as
    `_ANCHOR_EVERY` / 32 double-doubles of 32 integers: at even indices of his/los (at least
    `_ANCHOR_EVERY` / 2 values, scratch) the first, at odd ones the second. The integers are at
    most n <= `_SMIRNOV_MAX_COMPUTE_N` < 2^20, so a product of 32 is below 2^640 and the sum's
    running products (kept below 2^300) times one stay finite. Products of two integers
    (exact), of two such (exact as a double-double), then a balanced tree of double-double
    products, one level at a time over both sides: the loops have no branches and the compiler
    vectorizes them."""
    quads = _ANCHOR_EVERY // 2
    for k in range(quads):
        m = (m_num if k % 2 == 0 else m_den) + 4 * (k // 2)
        a = float(m) * float(m + 1)
        b = float(m + 2) * float(m + 3)
        his[k], los[k] = _two_prod(a, b)
    half = quads // 2
    while half >= _ANCHOR_EVERY // 16:  # j and j + half: the same side (half is even)
        for j in range(half):
            his[j], los[j] = _dd_mul_dd(his[j], los[j], his[j + half], los[j + half])
        half //= 2


@njit(cache=True, inline="always")
def _dd_times_scaled(hi, lo, ex, bh, bl):
    """(hi + lo) 2^ex times (bh + bl), the double-double kept below 2^300."""
    hi, lo = _dd_mul_dd(hi, lo, bh, bl)
    while hi > 2.0**300:
        hi *= 2.0**-300
        lo *= 2.0**-300
        ex += 300
    return hi, lo, ex


@njit(cache=True)
def _pow_scaled(bh, bl, m):
    """(bh + bl)^m for 0 < bh + bl <= 1 as (mantissa, exponent of 2), to a few ulp.

    The mantissa's power uses libm's `pow` (under an ulp whatever m; the exponents are passed as
    floats: numba raises a float to an integer power up to 65,536 by repeated squaring, whose
    rounding grows with the exponent; the sums were up to 3.7e-13 off scipy at large n with it):
    split into chunks that stay above 2^-900, like scipy's `pow2Scaled_D`; the low word enters
    as (1 + bl/bh)^m."""
    if m == 0:
        return 1.0, 0
    f, e = math.frexp(bh)
    mant = 1.0
    expo = e * m
    base = f
    k = m
    while True:
        lb = math.log2(base)
        if k * lb > _SPLIT_LOG2 or lb == 0.0:
            g, eg = math.frexp(math.pow(base, float(k)))
            mant, em = math.frexp(mant * g)
            expo += eg + em
            break
        chunk = int(_SPLIT_LOG2 / lb)
        q = k // chunk
        r = k - q * chunk
        if r:
            g, eg = math.frexp(math.pow(base, float(r)))
            mant, em = math.frexp(mant * g)
            expo += eg + em
        g, eg = math.frexp(math.pow(base, float(chunk)))
        expo += eg * q
        base = g
        k = q
    if bl != 0.0:
        ratio = bl / bh
        adj = m * ratio
        if abs(adj) > 1e-8:
            adj = math.expm1(m * math.log1p(ratio))
        mant += mant * adj
    return mant, expo


#: Where `_log1p_series` is used: |y| <= 2^-8, i.e. 1 / y at least 256.
_SERIES_MIN = 256.0


@njit(cache=True, inline="always")
def _log1p_small(y):
    """log(1 + y): its series to y^8 where |y| <= 2^-8 (the rest below 2^-67 of the result,
    as close as libm's log1p), libm's log1p elsewhere."""
    if abs(y) > 1.0 / _SERIES_MIN:
        return math.log1p(y)
    return _log1p_series(y)


@njit(cache=True, inline="always")
def _log1p_series(y):
    """log(1 + y) for |y| <= 2^-8: the series to y^8."""
    return y * (
        1.0
        + y
        * (
            -0.5
            + y
            * (1.0 / 3.0 + y * (-0.25 + y * (0.2 + y * (-1.0 / 6.0 + y * (1.0 / 7.0 - y * 0.125)))))
        )
    )


@njit(cache=True, inline="always")
def _pairwise(values, count):
    """Sum of values[:count], pairwise: rounding grows with log2(count)."""
    width = count
    while width > 1:
        half = width // 2
        for i in range(half):
            values[i] += values[i + half]
        if width % 2:
            values[half] = values[width - 1]
            width = half + 1
        else:
            width = half
    return values[0] if count else 0.0


@njit(cache=True, error_model="numpy")
def _recurrence_factors(powers, rational, v0, count, n, nxfl, a_hi, a_lo, series):
    """For the `count` terms after term v0 of `_smirnov_sf`'s sum (u = v - 1 from v0 on): the
    exponent of the power ratios and the rational ratio. With `series` (every log1p argument
    within `_log1p_series`' range) the loop has no branches or calls: with numpy's error model
    (no zero-division check; no division here can be by zero, p_u, q_u and q_v are positive)
    the compiler takes the test out of the loop and vectorizes that version."""
    for t in range(count):
        u = v0 + t
        p_u = (float(nxfl + u) + a_hi) + a_lo  # n x + u
        q_u = (float(n - nxfl - u) - a_hi) - a_lo  # n - n x - u
        q_v = (float(n - nxfl - u - 1) - a_hi) - a_lo
        if series:
            powers[t] = (u - 1) * _log1p_series(1.0 / p_u) + (n - u) * _log1p_series(-1.0 / q_u)
        else:
            powers[t] = (u - 1) * _log1p_small(1.0 / p_u) + (n - u) * _log1p_small(-1.0 / q_u)
        rational[t] = ((n - u) / (u + 1)) * ((p_u + 1.0) / q_v)


@njit(cache=True, error_model="numpy")
def _exp_poly(values, count, c):
    # exp(values[t] - c) by its Taylor polynomial to degree 7 (|values[t] - c| <= 2^-6: the
    # rest below 2^-63); no branch or call, vectorized
    for t in range(count):
        d = values[t] - c
        values[t] = 1.0 + d * (
            1.0
            + d
            * (
                0.5
                + d
                * (
                    1.0 / 6.0
                    + d * (1.0 / 24.0 + d * (1.0 / 120.0 + d * (1.0 / 720.0 + d * (1.0 / 5040.0))))
                )
            )
        )


@njit(cache=True)
def _exp_block(values, count):
    """values[:count] replaced by their exponentials: where they lie within `_EXP_SPREAD` of
    their midpoint c (a block of the Smirnov sum's exponents away from its ends), exp(c) times
    exp(value - c) by a polynomial (within ~2 ulp of libm's exp, vectorized), else libm's exp."""
    if count == 0:
        return
    lo = values[0]
    hi = values[0]
    for t in range(count):
        lo = min(lo, values[t])
        hi = max(hi, values[t])
    c = 0.5 * (lo + hi)
    if not (hi - c <= _EXP_SPREAD and c - lo <= _EXP_SPREAD):  # also when NaN
        for t in range(count):
            values[t] = math.exp(values[t])
        return
    scale = math.exp(c)
    _exp_poly(values, count, c)
    for t in range(count):
        values[t] *= scale


@njit(cache=True)
def _smirnov_sf(n, x):
    """scipy.special.smirnov(n, x) for the arguments `kstwo.sf` passes (1/n < x < 1)."""
    if n == 1:
        return 1.0 - x
    # n*x exactly, as floor(n*x) + alpha (scipy's modNX)
    c_hi, c_lo = _two_prod(float(n), x)
    fl = math.floor(c_hi)
    if fl == c_hi and c_lo < 0.0:
        fl -= 1.0
    a_hi, a_lo = _two_sum(c_hi - fl, c_lo)
    if a_hi >= 1.0:
        fl += 1.0
        a_hi, a_lo = _two_sum(a_hi - 1.0, a_lo)
    nxfl = int(fl)
    alpha_zero = a_hi == 0.0 and a_lo == 0.0
    if nxfl == 0 or (nxfl == 1 and alpha_zero):
        # cdf = x * (1 + x)^(n - 1)
        s, t = _two_sum(1.0, x)
        mant, ex = _pow_scaled(s, t, n - 1)
        return 1.0 - x * math.ldexp(mant, ex)
    if -2.0 * n * x * x < _CEPHES_MINLOG:
        return 0.0
    if nxfl >= n - 1:
        s, t = _two_sum(1.0, -x)
        mant, ex = _pow_scaled(s, t, n)
        return math.ldexp(mant, ex)
    if n > _SMIRNOV_MAX_COMPUTE_N:
        logp = -math.pow(6.0 * n * x + 1, 2) / 18.0 / n
        if logp < -math.log(2.0):
            return math.exp(logp)
        return 1.0 - (-math.expm1(logp))
    # Lower sum: sf = sum_{v=0}^{n_terms-1} C(n,v) x (x+v/n)^(v-1) (1-x-v/n)^(n-v), every term
    # positive. Terms are carried multiplied by 2^shift so that the significant ones stay
    # normal even when the sum is near the underflow limit (sf ~ exp(-2 n x^2)).
    n_terms = n - nxfl
    shift = int(2.0 * n * x * x / math.log(2.0))
    nf = float(n)
    # binomial C(n, v) = n (n-1) ... (n-v+1) / v!: both products exactly enough (double-double
    # mantissas and powers of two), divided only where a term is computed from scratch
    num_hi, num_lo, num_exp = 1.0, 0.0, 0
    den_hi, den_lo, den_exp = 1.0, 0.0, 0
    s_hi, s_lo = 0.0, 0.0
    block = np.empty(_ANCHOR_EVERY)
    powers = np.empty(_ANCHOR_EVERY)
    rational = np.empty(_ANCHOR_EVERY)
    scratch_hi = np.empty(_ANCHOR_EVERY // 2)
    scratch_lo = np.empty(_ANCHOR_EVERY // 2)
    v0 = 0
    while v0 < n_terms:
        # the block's first term from scratch:
        # b = 1 - x - v/n = ((n - nxfl - v) - alpha) / n, a = x + v/n = ((nxfl + v) + alpha) / n
        bh, bl = _two_sum(float(n - nxfl - v0), -a_hi)
        bh, bl = _quick_two_sum(bh, bl - a_lo)
        bh, bl = _dd_div_d(bh, bl, nf)
        bm, be = _pow_scaled(bh, bl, n - v0)
        if v0 == 0:
            term = math.ldexp(bm, be + shift)  # (1 - x)^n
        else:
            ah, al = _two_sum(float(nxfl + v0), a_hi)
            ah, al = _quick_two_sum(ah, al + a_lo)
            ah, al = _dd_div_d(ah, al, nf)
            am, ae = _pow_scaled(ah, al, v0 - 1)
            q = num_hi / den_hi
            binom = q + q * (num_lo / num_hi - den_lo / den_hi)
            mant = (binom * x) * am * bm
            term = math.ldexp(mant, num_exp - den_exp + ae + be + shift)
        v_end = min(v0 + _ANCHOR_EVERY, n_terms)
        block[0] = term
        # the others by recurrence, term(v) = term(v-1) * C ratio * power ratios with u = v - 1:
        # each ratio is independent of the others, only the running product is a chain
        # the ratios in one pass, then their exponentials, then the running product
        p_first = (float(nxfl + v0) + a_hi) + a_lo  # the block's smallest p_u
        q_last = (float(n - nxfl - (v_end - 2)) - a_hi) - a_lo  # and smallest q_u
        series = p_first >= _SERIES_MIN and q_last >= _SERIES_MIN
        count = v_end - v0 - 1
        _recurrence_factors(powers, rational, v0, count, n, nxfl, a_hi, a_lo, series)
        _exp_block(powers, count)
        for t in range(count):
            term *= rational[t] * powers[t]
            block[t + 1] = term
        s_hi, s_lo = _dd_add_d(s_hi, s_lo, _pairwise(block, v_end - v0))
        if v_end == n_terms:
            break
        if term != 0.0:
            # the terms decrease from here on: the rest cannot reach an ulp of the sum
            if 4.0 * (n_terms - v_end + 1) * term < _EPS * s_hi:
                break
        elif v_end - 1 > n // 2:
            break
        # C(n, v_end) = C(n, v0) * (n - v_end + 1) ... (n - v0) / ((v0 + 1) ... v_end), a whole
        # block here (v_end - v0 = _ANCHOR_EVERY: only the last block is shorter): the block's
        # products of integers in pieces of 32 (`_binomial_block`), each then one double-double
        # product; the running products are kept below 2^300 by powers of two
        _binomial_block(n - v_end + 1, v0 + 1, scratch_hi, scratch_lo)
        for c in range(_ANCHOR_EVERY // 32):
            num_hi, num_lo, num_exp = _dd_times_scaled(
                num_hi, num_lo, num_exp, scratch_hi[2 * c], scratch_lo[2 * c]
            )
            den_hi, den_lo, den_exp = _dd_times_scaled(
                den_hi, den_lo, den_exp, scratch_hi[2 * c + 1], scratch_lo[2 * c + 1]
            )
        v0 = v_end
    return math.ldexp(s_hi + s_lo, -shift)


# == Pelz-Good asymptotic series ===============================================================
@njit(cache=True, inline="always")
def _numpy_sum(values, count):
    # numpy's pairwise summation, as np.sum runs it on up to 128 elements
    if count < 8:
        res = 0.0
        for i in range(count):
            res += values[i]
        return res
    r0, r1, r2, r3 = values[0], values[1], values[2], values[3]
    r4, r5, r6, r7 = values[4], values[5], values[6], values[7]
    i = 8
    while i < count - (count % 8):
        r0 += values[i]
        r1 += values[i + 1]
        r2 += values[i + 2]
        r3 += values[i + 3]
        r4 += values[i + 4]
        r5 += values[i + 5]
        r6 += values[i + 6]
        r7 += values[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < count:
        res += values[i]
        i += 1
    return res


@njit(cache=True)
def _pelz_good_cdf(n, x):
    """scipy's `_kolmogn_PelzGood(n, x, cdf=True)`, operation for operation."""
    z = math.sqrt(float(n)) * x
    zsquared = math.pow(z, 2.0)
    zthree = math.pow(z, 3.0)
    zfour = math.pow(z, 4.0)
    zsix = math.pow(z, 6.0)
    qlog = -_PI_SQUARED / 8 / zsquared
    if qlog < _MIN_LOG:
        return 0.0
    q = math.exp(qlog)
    k1a = -zsquared
    k1b = _PI_SQUARED / 4
    k2a = 6 * zsix + 2 * zfour
    k2b = (2 * zfour - 5 * zsquared) * _PI_SQUARED / 4
    k2c = _PI_FOUR * (1 - 2 * zsquared) / 16
    k3d = _PI_SIX * (5 - 30 * zsquared) / 64
    k3c = _PI_FOUR * (-60 * zsquared + 212 * zfour) / 16
    k3b = _PI_SQUARED * (135 * zfour - 96 * zsix) / 4
    k3a = -30 * zsix - 90 * math.pow(z, 8.0)
    k0 = k1 = k2 = k3 = 0.0
    maxk = int(math.ceil(16 * z / math.pi))
    for k in range(maxk, 0, -1):
        m = 2 * k - 1
        msquared = float(m * m)
        mfour = float(m * m * m * m)
        msix = float(m * m * m * m * m * m)
        qpower = math.pow(q, float(8 * k))
        c1 = k1a + k1b * msquared
        c2 = k2a + k2b * msquared + k2c * mfour
        c3 = k3a + k3b * msquared + k3c * mfour + k3d * msix
        k0 = k0 * qpower + 1.0
        k1 = k1 * qpower + c1
        k2 = k2 * qpower + c2
        k3 = k3 * qpower + c3
    k0 = k0 * q * _SQRT2PI / z
    k1 = k1 * q * _SQRT2PI / (6 * zfour)
    k2 = k2 * q * _SQRT2PI / (72 * math.pow(z, 7.0))
    k3 = k3 * q * _SQRT2PI / (6480 * math.pow(z, 10.0))
    q = math.exp(-_PI_SQUARED / 2 / zsquared)
    sqrt3z = _SQRT3 * z
    a2 = np.empty(maxk)
    a3 = np.empty(maxk)
    for j in range(maxk):
        k = maxk - j
        ksquared = float(k * k)
        kspi = math.pi * k
        qp = math.pow(q, ksquared)
        a2[j] = ksquared * qp
        a3[j] = (sqrt3z + kspi) * (sqrt3z - kspi) * ksquared * qp
    k2 += _numpy_sum(a2, maxk) * (_PI_SQUARED * _SQRT2PI / (-36 * zthree))
    k3 += _numpy_sum(a3, maxk) * (_PI_SQUARED * _SQRT2PI / (216 * zsix))
    nf = n * 1.0
    k1 /= math.pow(nf, 0.5)
    k2 /= math.pow(nf, 1.0)
    k3 /= math.pow(nf, 1.5)
    return 0.0 + k0 + k1 + k2 + k3


# == Pomeranz's recursion (n <= 140) =========================================================
@njit(cache=True, inline="always")
def _pomeranz_j1j2(i, n, ll, ceilf, roundf):
    if i == 0:
        j1, j2 = -ll - ceilf - 1, ll + ceilf - 1
    else:
        ip1div2, ip1mod2 = (i + 1) // 2, (i + 1) % 2
        if ip1mod2 == 0:
            if ip1div2 == n + 1:
                j1, j2 = n - ll - ceilf - 1, n + ll + ceilf - 1
            else:
                j1, j2 = ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1
        else:
            j1, j2 = ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1
    return max(j1 + 2, 0), min(j2, n)


@njit(cache=True)
def _pomeranz_cdf(n, x):
    """scipy's `_kolmogn_Pomeranz(n, x, cdf=True)`: the same recursion, with its convolutions
    written out (numpy sums them in another order, hence a few ulp of difference)."""
    t = n * x
    ll = int(math.floor(t))
    f = 1.0 * (t - ll)
    g = min(f, 1.0 - f)
    ceilf = 1 if f > 0 else 0
    roundf = 1 if f > 0.5 else 0
    npwrs = 2 * (ll + 1)
    gpower = np.empty(npwrs)
    twogpower = np.empty(npwrs)
    onem2gpower = np.empty(npwrs)
    gpower[0] = 1.0
    twogpower[0] = 1.0
    onem2gpower[0] = 1.0
    expnt = 0
    g_over_n, two_g_over_n, one_minus_two_g_over_n = g / n, 2 * g / n, (1 - 2 * g) / n
    for m in range(1, npwrs):
        gpower[m] = gpower[m - 1] * g_over_n / m
        twogpower[m] = twogpower[m - 1] * two_g_over_n / m
        onem2gpower[m] = onem2gpower[m - 1] * one_minus_two_g_over_n / m
    v0 = np.zeros(npwrs)
    v1 = np.zeros(npwrs)
    v1[0] = 1.0
    v0s, v1s = 0, 0
    j1, j2 = _pomeranz_j1j2(0, n, ll, ceilf, roundf)
    for i in range(1, 2 * n + 2):
        k1 = j1
        v0, v1 = v1, v0
        v0s, v1s = v1s, v0s
        v1[:] = 0.0
        j1, j2 = _pomeranz_j1j2(i, n, ll, ceilf, roundf)
        if i == 1 or i == 2 * n + 1:
            pwrs = gpower
        elif i % 2:
            pwrs = twogpower
        else:
            pwrs = onem2gpower
        ln2 = j2 - k1 + 1
        if ln2 > 0:
            a0 = k1 - v0s
            la = min(a0 + ln2, npwrs) - a0  # numpy's slice stops at the end of the row
            lv = min(ln2, npwrs)
            conv_start = j1 - k1
            conv_len = j2 - j1 + 1
            top = 0.0
            for kk in range(conv_len):
                k = conv_start + kk
                acc = 0.0
                for ia in range(max(0, k - lv + 1), min(k, la - 1) + 1):
                    acc += v0[a0 + ia] * pwrs[k - ia]
                v1[kk] = acc
                top = max(top, acc)
            if 0 < top < _EM128:
                for kk in range(npwrs):
                    v1[kk] *= _EP128
                expnt -= _E128
            v1s = v0s + j1 - k1
    ans = v1[n - v1s]
    for m in range(1, n + 1):
        if abs(ans) > _EP128:
            ans *= _EM128
            expnt += _E128
        ans *= m
    if expnt != 0:
        ans = math.ldexp(ans, expnt)
    return _clip(ans)


# == the selection of scipy's _kolmogn(n, x, cdf=False) =======================================
@njit(cache=True, inline="always")
def _clip(p):
    return min(max(p, 0.0), 1.0)


@njit(cache=True)
def _sf_one(n, x):
    """kstwo.sf(x, n) for one element, or a marker for what Python must finish."""
    if math.isnan(n) or math.isnan(x) or not (n >= 1.0) or n != math.floor(n):
        return math.nan, _DONE
    if x <= 0.5 / n:
        return 1.0, _DONE
    if x >= 1.0:
        return 0.0, _DONE
    ni = int(n)
    t = ni * x
    if t <= 1.0:
        if t <= 0.5:
            return 1.0, _DONE
        if ni <= _SMALL_N:
            base = 2 * t - 1
            prob = 1.0
            inv = 1.0 / ni
            for i in range(1, ni + 1):
                prob *= i * inv * base
        else:
            rn = 1.0 / ni
            poly = 0.0
            for c in _STIRLING:
                poly = poly * (rn / ni) + c
            logfac = math.log(ni) / 2 - ni + _LOG_2PI / 2 + rn * poly
            prob = math.exp(logfac + ni * math.log(2 * t - 1))
        return _clip(1.0 - prob), _DONE
    if t >= ni - 1:
        return _clip(2 * math.pow(1.0 - x, float(ni))), _DONE
    if x >= 0.5:
        return _clip(2 * _smirnov_sf(ni, x)), _DONE
    nxsquared = t * x
    if ni <= _SMALL_N:
        if nxsquared <= _DMTW_SMALL_LIMIT:
            return _dmtw_sf(ni, x), _DONE
        if nxsquared <= _POMERANZ_COMPILED_LIMIT:
            return _clip(1.0 - _pomeranz_cdf(ni, x)), _DONE
        if nxsquared <= _POMERANZ_LIMIT:
            return math.nan, _NEEDS_SCIPY
        return _clip(2 * _smirnov_sf(ni, x)), _DONE
    if nxsquared >= _SMIRNOV_HIGH:
        return 0.0, _DONE
    if nxsquared >= _SMIRNOV_LOW:
        return _clip(2 * _smirnov_sf(ni, x)), _DONE
    if nxsquared >= 18.0:  # unreachable for the sf (kept as scipy has it)
        return 0.0, _DONE
    if ni <= _DMTW_MAX_N:
        w = ni * math.pow(x, 1.5)
        if abs(w - _DMTW_LIMIT) <= 1e-12:
            return math.nan, _NEEDS_BRANCH_CHECK
        if w <= _DMTW_LIMIT:
            return _dmtw_sf(ni, x), _DONE
    cdf = _pelz_good_cdf(ni, x)
    return _clip(1.0 - cdf), _DONE


@njit(cache=True, nogil=True)
def _fill(n, x, idx, out, todo):
    for j in idx:
        out[j], todo[j] = _sf_one(n[j], x[j])


@njit(cache=True)
def _dmtw_power(n, d):
    """`scipy.stats._ksstats._kolmogn_DMTW(n, d)` (scipy 1.17, BSD-3-Clause) up to its final
    loop, step for step: p = H^n[k-1, k-1] and the scaling exponent so far. The matrix products
    are BLAS's (numba's `np.dot`), which may add in another order than numpy's: p moves by a
    few ulp, which the sf = 1 - p n!/n^n (p n!/n^n below ~1e-7 at large n) does not show."""
    nd = n * d
    k = int(math.ceil(nd))
    h = k - nd
    m = 2 * k - 1
    H = np.zeros((m, m))
    v = np.empty(m)
    w = np.empty(m)
    fac = 1.0
    for j in range(1, m + 1):
        w[j - 1] = fac
        fac /= j
        v[j - 1] = (1.0 - h**j) * fac
    tt = max(2 * h - 1.0, 0.0) ** m - 2 * h**m
    v[m - 1] = (1.0 + tt) * fac
    for i in range(1, m):
        for r in range(i - 1, m):
            H[r, i] = w[r - i + 1]
    for r in range(m):
        H[r, 0] = v[r]
    for c in range(m):
        H[m - 1, c] = v[m - 1 - c]
    Hpwr = np.eye(m)
    nn = n
    expnt = 0
    Hexpnt = 0
    while nn > 0:
        if nn % 2:
            Hpwr = np.dot(Hpwr, H)
            expnt += Hexpnt
        H = np.dot(H, H)
        Hexpnt *= 2
        if abs(H[k - 1, k - 1]) > _EP128:
            H /= _EP128
            Hexpnt += _E128
        nn = nn // 2
    return Hpwr[k - 1, k - 1], expnt


@njit(cache=True)
def _dmtw_sf(n, x):
    """kstwo.sf by Durbin's matrix method: `_dmtw_power`, then scipy's last steps, p * n!/n^n
    and sf = 1 - clip(p, 0, 1). As long as scipy's p is a float64, the same operations; from
    the step at which it falls below 2^-128 scipy goes on in long double (64-bit mantissa,
    rounding at each of up to n steps), here in double-double (about 106 bits): the rest of
    n!/n^n as the product of the remaining integers over n to that power (`_dd_ratio_tail`)."""
    pj, ej = _dmtw_power(n, x)
    nf = float(n)
    i = 1
    while i <= n:
        pj = i * pj / nf
        i += 1
        if abs(pj) < _EM128:
            break
    else:
        if ej != 0:
            pj = math.ldexp(pj, ej)
        return _clip(1.0 - _clip(pj))
    th, tl, te = _dd_ratio_tail(i, n)
    hi, lo = _dd_mul_dd(pj * _EP128, 0.0, th, tl)
    ej += te - _E128
    hi, lo = math.ldexp(hi, ej), math.ldexp(lo, ej)
    if hi >= 1.0:
        return 0.0
    if hi < 0.0:
        return 1.0
    s, e = _two_sum(1.0, -hi)
    return _clip(s + (e - lo))


@njit(cache=True, inline="always")
def _dd_normalize(hi, lo, ex):
    m, e = math.frexp(hi)
    return m, math.ldexp(lo, -e), ex + e


@njit(cache=True)
def _dd_ratio_tail(i0, n):
    """prod_{t=i0}^{n} t / n in double-double, as (hi, lo, exponent of 2): the integers three
    at a time (each triple exact in a double for n <= 208,000), over n^(n - i0 + 1) by
    repeated squaring, one division at the end."""
    nf = float(n)
    ah, al, ae = 1.0, 0.0, 0
    bh, bl, be = 1.0, 0.0, 0
    t = i0
    turn = 0
    while t <= n:
        f = float(t)
        if t + 2 <= n:
            f = f * (t + 1) * (t + 2)
            t += 3
        else:
            t += 1
        # two accumulators in turn: two independent dependency chains
        if turn == 0:
            ah, al = _dd_mul_d(ah, al, f)
            if ah > 2.0**600:
                ah, al, ae = _dd_normalize(ah, al, ae)
        else:
            bh, bl = _dd_mul_d(bh, bl, f)
            if bh > 2.0**600:
                bh, bl, be = _dd_normalize(bh, bl, be)
        turn ^= 1
    ah, al, ae = _dd_normalize(ah, al, ae)
    bh, bl, be = _dd_normalize(bh, bl, be)
    ah, al = _dd_mul_dd(ah, al, bh, bl)
    ah, al, ae = _dd_normalize(ah, al, ae + be)
    # n^k
    k = n - i0 + 1
    ph, pl, pe = 1.0, 0.0, 0
    sh, sl, se = _dd_normalize(nf, 0.0, 0)
    while k > 0:
        if k & 1:
            ph, pl = _dd_mul_dd(ph, pl, sh, sl)
            ph, pl, pe = _dd_normalize(ph, pl, pe + se)
        sh, sl = _dd_mul_dd(sh, sl, sh, sl)
        sh, sl, se = _dd_normalize(sh, sl, 2 * se)
        k >>= 1
    # (ah, al) / (ph, pl)
    q1 = ah / ph
    p, e = _two_prod(q1, ph)
    s, f = _two_sum(ah, -p)
    f = ((f - e) + al) - q1 * pl
    qh, ql = _quick_two_sum(q1, (s + f) / ph)
    return qh, ql, ae - pe


@njit(cache=True, nogil=True)
def _dmtw_many(n, x, idx, out):
    for j in idx:
        out[j] = _dmtw_sf(int(n[j]), x[j])


def _deal(idx: np.ndarray, n: np.ndarray, workers: int) -> list[np.ndarray]:
    """`idx` dealt out over `workers` parts, round robin, largest n first: an element costs
    ~n (Smirnov sums, DMTW's final loop), so the parts cost about the same."""
    idx = idx[np.argsort(-n[idx], kind="stable")]
    parts = [idx[i :: max(1, workers)] for i in range(max(1, workers))]
    return [p for p in parts if p.size]


def kstwo_sf(x: np.ndarray, n: np.ndarray, *, workers: int = 1) -> np.ndarray:
    """`scipy.stats.kstwo.sf(x, n)` element-wise (1-D float arrays of equal shape)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    n = np.ascontiguousarray(n, dtype=np.float64)
    if x.shape != n.shape or x.ndim != 1:
        raise ValueError(f"x and n must be 1-D arrays of one shape, got {x.shape} and {n.shape}")
    out = np.empty(x.shape)
    todo = np.zeros(x.shape, dtype=np.int64)
    in_threads(lambda p: _fill(n, x, p, out, todo), _deal(np.arange(n.size), n, workers))

    check = np.flatnonzero(todo == _NEEDS_BRANCH_CHECK)
    for j in check:
        # at the DMTW limit, decide as scipy does: n * x**1.5 with x a 0-d array
        dmtw = bool(int(n[j]) * np.array(x[j]) ** 1.5 <= _DMTW_LIMIT)
        if dmtw:
            todo[j] = _NEEDS_DMTW
        else:
            from scipy.stats._ksstats import _kolmogn_PelzGood  # noqa: PLC0415 (rare)

            out[j] = _clip(1.0 - float(_kolmogn_PelzGood(int(n[j]), x[j], cdf=True)))
            todo[j] = _DONE
    dmtw = np.flatnonzero(todo == _NEEDS_DMTW)
    if dmtw.size:
        _dmtw_many(n, x, dmtw, out)
    rest = np.flatnonzero(todo == _NEEDS_SCIPY)
    if rest.size:
        # n <= 140 and 3 < n*x^2 <= 4 only: a window of at most ~141 rows against a reference
        # above 10,000 rows (smaller pairs take scipy's exact two-sample method).
        from scipy.stats import kstwo  # noqa: PLC0415

        out[rest] = kstwo.sf(x[rest], n[rest])
    return out
