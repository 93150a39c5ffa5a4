"""TFLite's integer quantization arithmetic, exactly, in Python (scalars or numpy int64 arrays).

What the compiler computes ahead of time (multipliers, shifts, look-up tables) must equal what the
tflite-micro reference kernels compute at run time, bit for bit. The definitions follow the TFLite
int8 quantization specification (https://www.tensorflow.org/lite/performance/quantization_spec) and the
fixed-point conventions it relies on (gemmlowp's Q-format arithmetic): a value in Q(i).(31-i) is an
int32 "raw" r meaning r / 2^(31-i).
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def quantize_multiplier(real: float) -> tuple[int, int]:
    """real (a double) -> (multiplier, shift) with real ~= multiplier * 2^(shift - 31), multiplier in Q0.31.

    As TFLite's QuantizeMultiplier: frexp, round half away from zero, renormalise 2^31, and flush shifts
    below -31 to zero.
    """
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    fixed = int(math.floor(abs(q) * (1 << 31) + 0.5)) * (1 if q > 0 else -1)
    if fixed == (1 << 31):
        fixed //= 2
        shift += 1
    if shift < -31:
        shift, fixed = 0, 0
    return fixed, shift


def srdhm(a, b):
    """SaturatingRoundingDoublingHighMul of int32 values (arrays broadcast). Returns int64 array/ints."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    # C++ integer division truncates toward zero.
    q = np.where(s >= 0, s >> 31, -((-s) >> 31))
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)


def rdbpot(x, exponent):
    """RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """TFLite's MultiplyByQuantizedMultiplier (double rounding: high multiply, then rounding shift)."""
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    x = np.asarray(x, dtype=np.int64) * (np.int64(1) << left)
    x = ((x + (1 << 31)) % (1 << 32)) - (1 << 31)  # the C code multiplies in int32 (wraps)
    return rdbpot(srdhm(x, multiplier), right)


def saturating_rounding_multiply_by_pot(x, exponent: int):
    x = np.asarray(x, dtype=np.int64)
    if exponent == 0:
        return x
    if exponent < 0:
        return rdbpot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    r = x << exponent
    r = np.where(x > threshold, INT32_MAX, r)
    return np.where(x < -threshold, INT32_MIN, r)


def rescale(x, old_integer_bits: int, new_integer_bits: int):
    return saturating_rounding_multiply_by_pot(x, old_integer_bits - new_integer_bits)


def _wrap32(x):
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) % (1 << 32)) - (1 << 31)


def _q31(value: float) -> int:
    return int(round(value * (1 << 31)))


def exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """exp(a) for a in [-1/4, 0), a and result in Q0.31: Taylor series around -1/8."""
    constant_term = _q31(math.exp(-1.0 / 8.0))
    one_third = _q31(1.0 / 3.0)
    x = _wrap32(np.asarray(a, np.int64) + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    poly = saturating_rounding_multiply_by_pot(_wrap32(srdhm(_wrap32(x4_over_4 + x3), one_third) + x2), -1)
    return _wrap32(constant_term + srdhm(constant_term, _wrap32(x + poly)))


def exp_on_negative_values(a, integer_bits: int):
    """exp(a) for a <= 0 given in Q(integer_bits); result in Q0.31 (1.0 saturates to INT32_MAX)."""
    a = np.asarray(a, dtype=np.int64)
    frac_bits = 31 - integer_bits
    one_quarter = 1 << (frac_bits - 2)
    mask = one_quarter - 1
    a_mod = _wrap32((a & mask) - one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(rescale(a_mod, integer_bits, 0))
    remainder = _wrap32(a_mod - a)
    for exponent in range(-2, 5):
        if integer_bits > exponent:
            multiplier = _q31(math.exp(-(2.0 ** exponent)))
            bit = 1 << (frac_bits + exponent)
            result = np.where((remainder & bit) != 0, srdhm(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def rounding_half_sum(a, b):
    s = np.asarray(a, np.int64) + np.asarray(b, np.int64)
    sign = np.where(s >= 0, 1, -1)
    t = s + sign
    return np.where(t >= 0, t // 2, -((-t) // 2))


def one_over_one_plus_x_for_x_in_0_1(a):
    """1 / (1 + a) for a in [0, 1) in Q0.31; result in Q0.31 (Newton-Raphson, three steps)."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    c48_17 = int(round(48.0 / 17.0 * (1 << 29)))
    cneg32_17 = int(round(-32.0 / 17.0 * (1 << 29)))
    x = _wrap32(c48_17 + srdhm(half_denominator, cneg32_17))
    one_q2 = 1 << 29
    for _ in range(3):
        hdx = srdhm(half_denominator, x)
        one_minus = _wrap32(one_q2 - hdx)
        x = _wrap32(x + rescale(srdhm(x, one_minus), 4, 2))
    return rescale(x >> 1, 2, 0)


def logistic(a, integer_bits: int):
    """1 / (1 + exp(-a)) for a in Q(integer_bits); result in Q0.31."""
    a = np.asarray(a, np.int64)
    positive = a > 0
    abs_a = np.where(positive, a, _wrap32(-a))
    pos = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(_wrap32(-abs_a), integer_bits))
    neg = _wrap32(INT32_MAX - pos)
    return np.where(a == 0, 1 << 30, np.where(positive, pos, neg))


def count_leading_zeros32(x: int) -> int:
    x &= 0xFFFFFFFF
    return 32 - x.bit_length()


def get_reciprocal(x: int, x_integer_digits: int) -> tuple[int, int]:
    """TFLite's GetReciprocal: (1/x in Q0.31 scaled, num_bits_over_unit) for x > 0 in Q(x_integer_digits)."""
    headroom_plus_one = count_leading_zeros32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted = (((x & 0xFFFFFFFF) << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    return int(one_over_one_plus_x_for_x_in_0_1(_wrap32(shifted))), num_bits_over_unit


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1) * (1 << (total_signed_bits - input_integer_bits))
                          / (1 << input_left_shift))
    return int(math.floor(max_input_rescaled))
