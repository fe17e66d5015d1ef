// Element-wise units on PE-wide streams: the residual add of two streams and a standalone requantization.
//
// Both walk a tensor of ELEMS elements (HWC order for a feature map, index order for a vector) PE elements per beat
// at II = 1; element j of a beat belongs to channel nf * PE + j with nf = beat % (C / PE), so the thresholds use the
// MVAU layout t[pe][nf][l].
//
// add_streams: acc = (a << KA) + (b << KB) in ap_int<ACC_BITS> (the shifts align two quantizers whose scales differ
// by a power of two). The shifted operands are exact (TI::width + K + 1 bits); the sum wraps modulo 2^ACC_BITS as
// the golden model's wrap mode does, so a width forced below the exact bound is counted by the overflow monitor.
// requant: acc = x in ap_int<ACC_BITS> (K = 1, weight 1), then the thresholds: FINN's standalone MultiThreshold.
#ifndef A2Q_ELEMENTWISE_HPP
#define A2Q_ELEMENTWISE_HPP

#include "a2q_common.hpp"

#ifdef A2Q_OVERFLOW_MONITOR
// One element of an element-wise layer seen by the overflow monitor: its ACC_BITS value against the wide one.
template <int ACC_BITS>
inline void a2q_monitor_element(unsigned layer, const ap_int<ACC_BITS>& acc, long long wide) {
  A2QLayerMonitor& m = a2q_monitor(layer);
  m.outputs += 1;
  if (acc.to_int64() != wide) m.events += 1;
}
#endif

template <unsigned ELEMS, unsigned C, unsigned PE, int ACC_BITS, unsigned LAYER, unsigned KA, unsigned KB,
          typename TI, typename TO, typename Activation>
void add_streams(hls::stream<Word<TI, PE> >& a, hls::stream<Word<TI, PE> >& b, hls::stream<Word<TO, PE> >& out,
                 const Activation& act) {
  static_assert(C % PE == 0 && ELEMS % C == 0, "PE must divide C and C the tensor");
  typedef ap_int<ACC_BITS> acc_t;
  typedef ap_int<TI::width + (KA > KB ? KA : KB) + 1> shifted_t;  // exact a << KA and b << KB
  for (unsigned i = 0; i < ELEMS / PE; i++) {
#pragma HLS pipeline II=1
    const Word<TI, PE> x = a.read();
    const Word<TI, PE> z = b.read();
    const unsigned nf = i % (C / PE);
    Word<TO, PE> y;
    for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS unroll
      shifted_t sa = x.v[pe], sb = z.v[pe];
      sa <<= KA;
      sb <<= KB;
      acc_t acc = acc_t(sa);
      acc += acc_t(sb);
#ifdef A2Q_OVERFLOW_MONITOR
      a2q_monitor_element<ACC_BITS>(LAYER, acc, sa.to_int64() + sb.to_int64());
#endif
      y.v[pe] = act.activate(nf, pe, acc);
    }
    out.write(y);
  }
  A2Q_LOG_ITERATIONS(ELEMS / PE);
}

template <unsigned ELEMS, unsigned C, unsigned PE, int ACC_BITS, unsigned LAYER, typename TI, typename TO,
          typename Activation>
void requant(hls::stream<Word<TI, PE> >& in, hls::stream<Word<TO, PE> >& out, const Activation& act) {
  static_assert(C % PE == 0 && ELEMS % C == 0, "PE must divide C and C the tensor");
  typedef ap_int<ACC_BITS> acc_t;
  for (unsigned i = 0; i < ELEMS / PE; i++) {
#pragma HLS pipeline II=1
    const Word<TI, PE> x = in.read();
    const unsigned nf = i % (C / PE);
    Word<TO, PE> y;
    for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS unroll
      const acc_t acc = acc_t(x.v[pe]);
#ifdef A2Q_OVERFLOW_MONITOR
      a2q_monitor_element<ACC_BITS>(LAYER, acc, (long long)x.v[pe].to_int64());
#endif
      y.v[pe] = act.activate(nf, pe, acc);
    }
    out.write(y);
  }
  A2Q_LOG_ITERATIONS(ELEMS / PE);
}

#endif
