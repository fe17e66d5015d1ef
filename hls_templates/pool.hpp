// Max pooling on an HWC integer stream (pooling commutes with the monotone thresholds, so it stays integer).
// Reads an IH x IW x C frame (W elements per beat) through the sliding window's line buffer and schedule
// (sliding_window.hpp: WindowSchedule, window_loop; one pipelined loop, II = 1) and streams the pooled frame in
// the same order and width: C / W beats per output pixel, each the max of W channels' KH x KW windows.
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

#endif
