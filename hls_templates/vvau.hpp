// Vector-vector-activation unit (VVAU, as FINN's): depthwise convolution and average pooling, ACC_BITS accumulators.
//
// Each output channel c is a dot product of its own input channel's KH x KW window with its own K = KH*KW weights
// (no sum over input channels). PE channels are computed in parallel, each over SIMD window positions per cycle, so
// one output pixel takes (C/PE) * (K/SIMD) cycles at II = 1. The input comes from dw_sliding_window
// (sliding_window.hpp): one beat is PE * SIMD elements, v[pe * SIMD + s] = channel nf*PE + pe, position sf*SIMD + s.
// Output: PE channels per beat, channel groups in order, so the output streams in HWC order.
//
// Average pooling is this unit with every weight 1 (UINT1): the accumulator is the exact window sum, whose width
// the plan proves from the window size and the input range; the division / truncation / requantization after it
// are the thresholds. As in mvau.hpp, products keep their full TI + TW width and only the adder tree and the
// accumulator are ACC_BITS wide; ap_int wraps modulo 2^ACC_BITS, so the result equals the golden model's wrap
// mode for any summation order. Weights: [PE][(C/PE)*(K/SIMD)][SIMD], weights[pe][nf*SF + sf][s] = W[nf*PE + pe][sf*SIMD + s].
#ifndef A2Q_VVAU_HPP
#define A2Q_VVAU_HPP

#include "a2q_common.hpp"

template <unsigned K, unsigned C, unsigned SIMD, unsigned PE, unsigned ROWS, int ACC_BITS, unsigned LAYER,
          typename TI, typename TW, typename TO, typename Activation, typename TW_ROM>
void vvau(hls::stream<Word<TI, PE * SIMD> >& in, hls::stream<Word<TO, PE> >& out,
          const TW_ROM weights[PE][(C / PE) * (K / SIMD)][SIMD], const Activation& act) {
  constexpr unsigned SF = A2QFold<K, C, SIMD, PE>::SF;  // checks the folding
  constexpr unsigned NF = A2QFold<K, C, SIMD, PE>::NF;

#pragma HLS array_partition variable=weights complete dim=1
#pragma HLS array_partition variable=weights complete dim=3

  A2QAcc<ACC_BITS> acc[PE];
#pragma HLS array_partition variable=acc complete

  a2q_fold_loop<ROWS, NF, SF>(out, [&](unsigned nf, unsigned sf, Word<TO, PE>& y) {
#pragma HLS inline
    const Word<TI, PE * SIMD> x = in.read();
    for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS unroll
      y.v[pe] = act.activate(nf, pe, a2q_lane_mac<SIMD, SF, LAYER, TW>(acc[pe], x, pe * SIMD,
                                                                        weights[pe][nf * SF + sf], sf));
    }
  });
}

#endif
