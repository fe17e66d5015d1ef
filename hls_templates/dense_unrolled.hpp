// Fully unrolled dense layer with constant weights (hls4ml's "latency" strategy): one input vector per call,
// every multiply-accumulate in parallel, the pipeline taking a new vector every cycle (II = 1).
//
// Weights are a `static const` table (laid out [C][1][K], the MVAU layout at SIMD = K, PE = C), completely
// partitioned, so after unrolling each product is a multiplication by a constant: HLS reduces it to shifts and
// adds, and zero weights disappear. The accumulator is ap_int<ACC_BITS>: it wraps modulo 2^ACC_BITS like the
// folded MVAU and the golden model, so results agree for any summation order. The RTL counterpart is
// hw/rtl/unrolled.py (signed-digit adder trees sized to exact ranges).
#ifndef A2Q_DENSE_UNROLLED_HPP
#define A2Q_DENSE_UNROLLED_HPP

#include "a2q_common.hpp"

template <unsigned K, unsigned C, int ACC_BITS, unsigned LAYER, typename TI, typename TW, typename TO,
          typename Activation, typename TW_ROM>
void dense_unrolled(hls::stream<Word<TI, K> >& in, hls::stream<Word<TO, C> >& out, const TW_ROM weights[C][1][K],
                    const Activation& act) {
#pragma HLS pipeline II=1
#pragma HLS array_partition variable=weights complete dim=0
  typedef ap_int<ACC_BITS> acc_t;
  typedef ap_int<TI::width + TW::width> prod_t;
  const Word<TI, K> x = in.read();
  Word<TO, C> y;
  for (unsigned c = 0; c < C; c++) {
#pragma HLS unroll
    acc_t acc = 0;
#ifdef A2Q_OVERFLOW_MONITOR
    long long wide = 0;
#endif
    for (unsigned k = 0; k < K; k++) {
#pragma HLS unroll
      const prod_t p = x.v[k] * TW(weights[c][0][k]);
      acc += p;
#ifdef A2Q_OVERFLOW_MONITOR
      wide += (long long)p.to_int64();
#endif
    }
#ifdef A2Q_OVERFLOW_MONITOR
    A2QLayerMonitor& m = a2q_monitor(LAYER);
    m.outputs += 1;
    if (acc.to_int64() != wide) m.events += 1;
#endif
    y.v[c] = act.activate(0, c, acc);
  }
  out.write(y);
  A2Q_LOG_ITERATIONS(1);
}

#endif
