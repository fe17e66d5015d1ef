"""Accumulator bounds: exact <= L1 <= datatype for any integer weights, and the exact bound is tight."""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from a2qflow.hw.compiler.bounds import (
    acc_bits_datatype,
    acc_bits_exact,
    acc_bits_l1,
    channel_ranges,
    l1_limit,
    l1_limit_zero_centered,
    l1_norms,
    signed_bits_for_range,
    worst_case_inputs,
    wrap,
)
from a2qflow.hw.compiler.ir import IntType


@st.composite
def layers(draw, max_c=6, max_k=40):
    """A random integer weight matrix within an M-bit signed type, and an N-bit input type."""
    w_type = IntType(draw(st.integers(2, 8)), True)
    in_type = IntType(draw(st.integers(1, 8)), draw(st.booleans()))
    assume(in_type.bits >= 2 or not in_type.signed)
    C, K = draw(st.integers(1, max_c)), draw(st.integers(1, max_k))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    w = rng.integers(w_type.min, w_type.max + 1, (C, K))
    w[rng.random((C, K)) < draw(st.floats(0, 0.9))] = 0  # sparsity, as A2Q produces
    return w, in_type, w_type


@settings(max_examples=200, deadline=None)
@given(layers())
def test_exact_le_l1_le_datatype(layer):
    w, in_type, w_type = layer
    exact, l1, dt = acc_bits_exact(w, in_type), acc_bits_l1(w, in_type), acc_bits_datatype(w.shape[1], in_type, w_type)
    assert exact <= l1 <= dt, (exact, l1, dt)


@settings(max_examples=200, deadline=None)
@given(layers())
def test_exact_bound_is_tight_on_worst_case_vectors(layer):
    """Every channel's worst-case vectors fit in P_exact bits; with one bit less at least one of them overflows."""
    w, in_type, _ = layer
    P = acc_bits_exact(w, in_type)
    x_hi, x_lo = worst_case_inputs(w, in_type)
    assert x_hi.min() >= in_type.min and x_hi.max() <= in_type.max and x_lo.min() >= in_type.min
    acc = np.concatenate([(w * x_hi).sum(axis=1), (w * x_lo).sum(axis=1)])  # int64 dot products
    lo, hi = channel_ranges(w, in_type)
    assert np.array_equal(acc, np.concatenate([hi, lo]))
    assert np.array_equal(wrap(acc, P), acc), "the exact bound does not hold its own worst case"
    if P > 1:
        assert np.any(wrap(acc, P - 1) != acc), f"P={P} is not tight: P-1 also holds every worst case"


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.booleans(), st.integers(0, 2**32 - 1))
def test_channel_ranges_match_brute_force(K, bits, signed, seed):
    in_type = IntType(bits + (1 if signed else 0), signed)
    w = np.random.default_rng(seed).integers(-4, 5, (3, K))
    xs = np.array(list(itertools.product(range(in_type.min, in_type.max + 1), repeat=K)))
    acc = xs @ w.T
    lo, hi = channel_ranges(w, in_type)
    assert np.array_equal(acc.min(axis=0), lo) and np.array_equal(acc.max(axis=0), hi)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4096), st.integers(1, 16), st.integers(2, 16), st.booleans())
def test_datatype_bound_is_the_paper_formula(K, N, M, signed):
    """P = ceil(alpha + log2(1 + 2^-alpha) + 1), alpha = log2(K) + N + M - 1 - [signed x]."""
    assume(N >= 2 or not signed)
    alpha = math.log2(K) + N + M - 1 - int(signed)
    X = K * 2 ** (N + M - 1 - int(signed))  # 2^alpha, exact
    assert acc_bits_datatype(K, IntType(N, signed), IntType(M, True)) == math.ceil(math.log2(X + 1) + 1)
    assert abs((alpha + math.log2(1 + 2 ** -alpha) + 1) - (math.log2(X + 1) + 1)) < 1e-9


@settings(max_examples=200, deadline=None)
@given(layers())
def test_l1_bound_is_the_a2q_condition(layer):
    """acc_bits_l1 is the smallest P with max ||q||_1 <= (2^(P-1)-1) * 2^(s-N), and it is safe."""
    w, in_type, _ = layer
    P = acc_bits_l1(w, in_type)
    norm = int(l1_norms(w).max())
    assert norm <= l1_limit(P, in_type)
    if P > 1:
        assert norm > l1_limit(P - 1, in_type)
    assert acc_bits_exact(w, in_type) <= P


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 24), st.integers(1, 8), st.booleans(), st.integers(1, 64), st.integers(0, 2**32 - 1))
def test_weights_within_the_a2q_budget_never_overflow(P, N, signed, K, seed):
    """Any q with ||q||_1 <= (2^(P-1)-1) * 2^(s-N) keeps every N-bit dot product inside P bits (A2Q's theorem)."""
    assume(N >= 2 or not signed)
    in_type = IntType(N, signed)
    budget = int(math.floor(l1_limit(P, in_type)))
    assume(budget >= 1)
    rng = np.random.default_rng(seed)
    parts = rng.multinomial(budget, np.ones(K) / K, size=4)  # four channels each using the whole budget
    w = parts * rng.choice([-1, 1], (4, K))
    assert acc_bits_exact(w, in_type) <= P


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 24), st.integers(1, 8), st.integers(1, 32), st.integers(0, 2**32 - 1))
def test_zero_centred_weights_within_the_a2q_plus_budget_never_overflow(P, N, half_k, seed):
    """A2Q+: zero-centred q (sum 0) with ||q||_1 <= 2 (2^(P-1)-1) / (2^N-1) fits P bits for unsigned inputs."""
    in_type = IntType(N, False)
    half = int(math.floor(l1_limit_zero_centered(P, in_type) / 2))
    assume(half >= 1)
    rng = np.random.default_rng(seed)
    pos = rng.multinomial(half, np.ones(half_k) / half_k, size=3)
    neg = rng.multinomial(half, np.ones(half_k) / half_k, size=3)
    w = np.concatenate([pos, -neg], axis=1)
    assert np.all(w.sum(axis=1) == 0)
    assert acc_bits_exact(w, in_type) <= P
    assert l1_limit_zero_centered(P, in_type) >= 2 * l1_limit(P, in_type) * (2**N / (2**N - 1)) - 1e-9


@given(st.integers(-(2**40), 2**40), st.integers(-(2**40), 2**40))
def test_signed_bits_for_range_is_minimal(a, b):
    lo, hi = min(a, b), max(a, b)
    P = signed_bits_for_range(lo, hi)
    assert -(2 ** (P - 1)) <= lo and hi <= 2 ** (P - 1) - 1
    if P > 1:
        assert lo < -(2 ** (P - 2)) or hi > 2 ** (P - 2) - 1


def test_worked_example_from_docs():
    """docs/compiler.md: q = [3, -2, 0, 1] on UINT4 inputs, 4-bit weights."""
    w, x, wt = np.array([[3, -2, 0, 1]]), IntType(4, False), IntType(4, True)
    assert channel_ranges(w, x) == (np.array([-30]), np.array([60]))
    assert (acc_bits_exact(w, x), acc_bits_l1(w, x), acc_bits_datatype(4, x, wt)) == (7, 8, 11)
