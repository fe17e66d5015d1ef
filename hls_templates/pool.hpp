// Max pooling on an HWC integer stream (pooling commutes with the monotone thresholds, so it stays integer).
// Reads an IH x IW x C frame (W elements per beat) through the sliding window's line buffer and schedule
// (sliding_window.hpp: WindowSchedule, window_loop; one pipelined loop, II = 1) and streams the pooled frame in
// the same order and width: C / W beats per output pixel, each the max of W channels' KH x KW windows.
//
// global_pool: an average pool whose window is the whole unpadded frame (hw/compiler/ir.py: is_global_pool), as
// FINN's GlobalAccPool: no line buffer, no window, C per-channel sums only.
#ifndef A2Q_POOL_HPP
#define A2Q_POOL_HPP

#include "a2q_common.hpp"
#include "sliding_window.hpp"

// Beat cb of a pooled pixel: channels cb * W .. cb * W + W - 1, each the max over its window.
template <unsigned KK, unsigned C, unsigned W, typename T>
struct MaxBeat {
  Word<T, W> operator()(const T win[KK][C], unsigned cb) const {
#pragma HLS inline
    Word<T, W> y;
    for (unsigned j = 0; j < W; j++) {
#pragma HLS unroll
      T m = win[0][cb * W + j];
      for (unsigned k = 1; k < KK; k++) {
#pragma HLS unroll
        const T v = win[k][cb * W + j];
        if (v > m) m = v;
      }
      y.v[j] = m;
    }
    return y;
  }
};

template <unsigned C, unsigned IH, unsigned IW, unsigned KH, unsigned KW, unsigned SH, unsigned SW, unsigned W,
          typename T>
void maxpool(hls::stream<Word<T, W> >& in, hls::stream<Word<T, W> >& out) {
  static_assert(C % W == 0, "beat width must divide the channel count");
  typedef WindowSchedule<C, IH, IW, KH, KW, SH, SW, 0, 0, 0, 0, W> S;
  const unsigned long long n = window_loop<S, C / W, T>(in, out, MaxBeat<KH * KW, C, W, T>());
  A2Q_LOG_ITERATIONS(n);
  (void)n;
}

// Global average pool: reads the N = IH * IW pixel frame once, BEAT channels per beat (HWC order, so beat i holds
// channels cb * BEAT .. cb * BEAT + BEAT - 1 with cb = i % (C / BEAT)), and adds each element to its channel's
// ACC_BITS accumulator with the VVAU's lane step (a2q_lane_mac: weight 1, one fold per pixel, restarted at the
// frame's first pixel, wrapping modulo 2^ACC_BITS like the golden model, counted by the overflow monitor on the
// last pixel). The plan proves the sum of N inputs fits in ACC_BITS. During the last pixel's C / BEAT beats each
// beat's BEAT sums go through the layer's activation (thresholds laid out [BEAT][C / BEAT][L], the MVAU's layout
// with PE = BEAT) and leave at the producer's width: one pipelined loop of N * C / BEAT iterations at II = 1,
// holding C accumulators (registers) and nothing of the frame.
template <unsigned C, unsigned N, unsigned BEAT, int ACC_BITS, unsigned LAYER, typename TI, typename TW, typename TO,
          typename Activation>
void global_pool(hls::stream<Word<TI, BEAT> >& in, hls::stream<Word<TO, BEAT> >& out, const Activation& act) {
  static_assert(C % BEAT == 0, "beat width must divide the channel count");
  constexpr unsigned CB = C / BEAT;  // beats per pixel
  static const typename a2q_rom<2>::type one[1] = {1};  // the all-ones weight, as the VVAU's UINT1 table stores it
  A2QAcc<ACC_BITS> acc[BEAT][CB];
#pragma HLS array_partition variable=acc complete dim=0
  ap_uint<a2q_clog2(CB)> cb = 0;
  ap_uint<a2q_clog2(N)> px = 0;
  for (unsigned i = 0; i < N * CB; i++) {
#pragma HLS pipeline II=1
    const Word<TI, BEAT> x = in.read();
    Word<TO, BEAT> y;
    for (unsigned j = 0; j < BEAT; j++) {
#pragma HLS unroll
      y.v[j] = act.activate(cb, j, a2q_lane_mac<1, N, LAYER, TW>(acc[j][cb], x, j, one, px));
    }
    if (px == N - 1) out.write(y);
    if (cb == CB - 1) {
      cb = 0;
      px++;
    } else {
      cb++;
    }
  }
  A2Q_LOG_ITERATIONS(N * CB);
}

#endif
