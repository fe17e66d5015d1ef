// Max pooling on an HWC integer stream (pooling commutes with the monotone thresholds, so it stays integer).
// Reads one IH x IW x C frame (W elements per beat) and streams the pooled frame in the same order and width.
#ifndef A2Q_POOL_HPP
#define A2Q_POOL_HPP

#include "a2q_common.hpp"
#include "stream_utils.hpp"

template <unsigned C, unsigned IH, unsigned IW, unsigned KH, unsigned KW, unsigned SH, unsigned SW, unsigned W,
          typename T>
void maxpool(hls::stream<Word<T, W> >& in, hls::stream<Word<T, W> >& out) {
  constexpr unsigned OH = (IH - KH) / SH + 1;
  constexpr unsigned OW = (IW - KW) / SW + 1;
  static_assert(C % W == 0, "beat width must divide the channel count");

  T frame[IH * IW * C];
  read_frame<IH * IW * C, W>(in, frame);
emit_pooled:
  for (unsigned oy = 0; oy < OH; oy++) {
    for (unsigned ox = 0; ox < OW; ox++) {
      for (unsigned cb = 0; cb < C / W; cb++) {
#pragma HLS pipeline II=1
        Word<T, W> y;
        for (unsigned j = 0; j < W; j++) {
#pragma HLS unroll
          const unsigned c = cb * W + j;
          T m = frame[((oy * SH) * IW + ox * SW) * C + c];
          for (unsigned ky = 0; ky < KH; ky++) {
            for (unsigned kx = 0; kx < KW; kx++) {
              const T v = frame[((oy * SH + ky) * IW + ox * SW + kx) * C + c];
              if (v > m) m = v;
            }
          }
          y.v[j] = m;
        }
        out.write(y);
      }
    }
  }
}

#endif
