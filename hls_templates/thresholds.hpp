// Activations applied to an MVAU's ACC_BITS accumulator, one channel (nf, pe) at a time.
//
// ThresholdActivation: out = OUT_BASE + #{l : acc >= T[c][l]} (FINN's multi-threshold), with the thresholds
// fitted to the accumulator width (hw/thresholds.py) and stored THR_BITS wide (ACC_BITS, or ACC_BITS + 1 when
// a never-firing threshold sits at 2^(ACC_BITS-1)): threshold memories and comparators shrink with ACC_BITS.
// Thresholds are laid out [PE][C/PE][L]: t[pe][nf][l] = T[nf*PE + pe][l].
//
// PassThrough: the last layer streams its raw accumulators; the float scale / bias is applied off-chip.
#ifndef A2Q_THRESHOLDS_HPP
#define A2Q_THRESHOLDS_HPP

#include "a2q_common.hpp"

template <unsigned C, unsigned PE, unsigned L, int THR_BITS, typename TO, int OUT_BASE>
struct ThresholdActivation {
  typename a2q_rom<THR_BITS>::type t[PE][C / PE][L];  // compared as ap_int<THR_BITS>

  template <int ACC_BITS>
  TO activate(unsigned nf, unsigned pe, const ap_int<ACC_BITS>& acc) const {
#pragma HLS inline
    static_assert(THR_BITS >= ACC_BITS, "thresholds must be at least ACC_BITS wide");
    ap_uint<a2q_clog2(L)> count = 0;
    for (unsigned l = 0; l < L; l++) {
#pragma HLS unroll
      count += (acc >= ap_int<THR_BITS>(t[pe][nf][l])) ? 1 : 0;
    }
    return TO(OUT_BASE + int(count));
  }
};

template <int ACC_BITS>
struct PassThrough {
  ap_int<ACC_BITS> activate(unsigned, unsigned, const ap_int<ACC_BITS>& acc) const {
#pragma HLS inline
    return acc;
  }
};

#endif
