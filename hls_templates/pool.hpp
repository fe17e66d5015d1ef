// Max pooling on an HWC integer stream (pooling commutes with the monotone thresholds, so it stays integer).
// Reads an IH x IW x C frame (W elements per beat) into the sliding window's line buffer (KH - 1 rows plus KW
// pixels, sliding_window.hpp), only as far as the next pooling window needs, and streams the pooled frame in the
// same order and width.
#ifndef A2Q_POOL_HPP
#define A2Q_POOL_HPP

#include "a2q_common.hpp"
#include "sliding_window.hpp"

template <unsigned C, unsigned IH, unsigned IW, unsigned KH, unsigned KW, unsigned SH, unsigned SW, unsigned W,
          typename T>
void maxpool(hls::stream<Word<T, W> >& in, hls::stream<Word<T, W> >& out) {
  constexpr unsigned OH = (IH - KH) / SH + 1;
  constexpr unsigned OW = (IW - KW) / SW + 1;
  static_assert(C % W == 0, "beat width must divide the channel count");

  LineBuffer<C, IH, IW, KH, KW, SH, SW, 0, 0, W, T> lb;
emit_pooled:
  for (unsigned oy = 0; oy < OH; oy++) {
    for (unsigned ox = 0; ox < OW; ox++) {
      lb.fill_window(in, oy, ox);
      for (unsigned cb = 0; cb < C / W; cb++) {
#pragma HLS pipeline II=1
        Word<T, W> y;
        for (unsigned j = 0; j < W; j++) {
#pragma HLS unroll
          const unsigned c = cb * W + j;
          T m = lb.at(oy * SH, ox * SW, c);
          for (unsigned ky = 0; ky < KH; ky++) {
            for (unsigned kx = 0; kx < KW; kx++) {
              const T v = lb.at(oy * SH + ky, ox * SW + kx, c);
              if (v > m) m = v;
            }
          }
          y.v[j] = m;
        }
        out.write(y);
      }
    }
  }
  lb.drain(in);
}

#endif
