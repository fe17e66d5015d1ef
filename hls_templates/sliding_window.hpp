// Sliding-window (im2col) generator for a convolution on an HWC stream.
//
// Reads one IH x IW x IC feature map (IN_W elements per beat) into a frame buffer, then emits, for every output
// pixel in raster order, the KH*KW*IC window in (kh, kw, ic) order, SIMD elements per beat, with integer-zero
// padding (PT, PL, PB, PR = top, left, bottom, right). This is the order hw.ir.conv_weights_ohwi gives the weights.
// The frame buffer keeps the unit simple and exact; a line-buffer variant would cut its memory to KH lines.
#ifndef A2Q_SLIDING_WINDOW_HPP
#define A2Q_SLIDING_WINDOW_HPP

#include "a2q_common.hpp"
#include "stream_utils.hpp"

template <unsigned IC, unsigned IH, unsigned IW, unsigned KH, unsigned KW, unsigned SH, unsigned SW,
          unsigned PT, unsigned PL, unsigned PB, unsigned PR, unsigned IN_W, unsigned SIMD, typename T>
void sliding_window(hls::stream<Word<T, IN_W> >& in, hls::stream<Word<T, SIMD> >& out) {
  constexpr unsigned OH = (IH + PT + PB - KH) / SH + 1;
  constexpr unsigned OW = (IW + PL + PR - KW) / SW + 1;
  constexpr unsigned K = KH * KW * IC;
  constexpr unsigned IN_ELEMS = IH * IW * IC;
  static_assert(IN_ELEMS % IN_W == 0, "input beat width must divide the feature map");
  static_assert(K % SIMD == 0, "SIMD must divide KH*KW*IC");

  T frame[IH * IW * IC];
  read_frame<IN_ELEMS, IN_W>(in, frame);
emit_windows:
  for (unsigned oy = 0; oy < OH; oy++) {
    for (unsigned ox = 0; ox < OW; ox++) {
      for (unsigned kb = 0; kb < K / SIMD; kb++) {
#pragma HLS pipeline II=1
        Word<T, SIMD> y;
        for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS unroll
          const unsigned k = kb * SIMD + s;
          const unsigned ic = k % IC, kw = (k / IC) % KW, kh = k / (IC * KW);
          const int iy = int(oy * SH + kh) - int(PT), ix = int(ox * SW + kw) - int(PL);
          const bool inside = iy >= 0 && iy < int(IH) && ix >= 0 && ix < int(IW);
          y.v[s] = inside ? frame[(iy * IW + ix) * IC + ic] : T(0);
        }
        out.write(y);
      }
    }
  }
}

#endif
