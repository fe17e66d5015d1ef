// Sliding-window (im2col) generator for a convolution on an HWC stream.
//
// Reads one IH x IW x IC feature map (IN_W elements per beat) into a frame buffer, then emits, for every output
// pixel in raster order, the KH*KW*IC window in (kh, kw, ic) order, SIMD elements per beat, with integer-zero
// padding (PT, PL, PB, PR = top, left, bottom, right). This is the order hw.ir.conv_weights_ohwi gives the weights.
// The frame buffer keeps the unit simple and exact; a line-buffer variant would cut its memory to KH lines.
//
// dw_sliding_window feeds a vector-vector unit (vvau.hpp: depthwise convolution, average pooling): for every output
// pixel it emits channel group nf (PE channels) x kernel fold sf (SIMD window positions in (kh, kw) order) as one
// beat of PE * SIMD elements, v[pe * SIMD + s] = window of channel nf * PE + pe at position sf * SIMD + s.
#ifndef A2Q_SLIDING_WINDOW_HPP
#define A2Q_SLIDING_WINDOW_HPP

#include "a2q_common.hpp"
#include "stream_utils.hpp"

// Element (py, px, c) of the zero-padded HWC frame (py, px count from the padded top-left corner).
template <unsigned IC, unsigned IH, unsigned IW, unsigned PT, unsigned PL, typename T>
T padded_pixel(const T frame[IH * IW * IC], unsigned py, unsigned px, unsigned c) {
#pragma HLS inline
  const int iy = int(py) - int(PT), ix = int(px) - int(PL);
  const bool inside = iy >= 0 && iy < int(IH) && ix >= 0 && ix < int(IW);
  return inside ? frame[(iy * IW + ix) * IC + c] : T(0);
}

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
          y.v[s] = padded_pixel<IC, IH, IW, PT, PL, T>(frame, oy * SH + kh, ox * SW + kw, ic);
        }
        out.write(y);
      }
    }
  }
}

template <unsigned C, unsigned IH, unsigned IW, unsigned KH, unsigned KW, unsigned SH, unsigned SW,
          unsigned PT, unsigned PL, unsigned PB, unsigned PR, unsigned IN_W, unsigned SIMD, unsigned PE, typename T>
void dw_sliding_window(hls::stream<Word<T, IN_W> >& in, hls::stream<Word<T, PE * SIMD> >& out) {
  constexpr unsigned OH = (IH + PT + PB - KH) / SH + 1;
  constexpr unsigned OW = (IW + PL + PR - KW) / SW + 1;
  constexpr unsigned K = KH * KW;
  static_assert((IH * IW * C) % IN_W == 0, "input beat width must divide the feature map");
  static_assert(K % SIMD == 0, "SIMD must divide KH*KW");
  static_assert(C % PE == 0, "PE must divide the channel count");

  T frame[IH * IW * C];
  read_frame<IH * IW * C, IN_W>(in, frame);
emit_dw_windows:
  for (unsigned oy = 0; oy < OH; oy++) {
    for (unsigned ox = 0; ox < OW; ox++) {
      for (unsigned nf = 0; nf < C / PE; nf++) {
        for (unsigned sf = 0; sf < K / SIMD; sf++) {
#pragma HLS pipeline II=1
          Word<T, PE * SIMD> y;
          for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS unroll
            for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS unroll
              const unsigned k = sf * SIMD + s;
              y.v[pe * SIMD + s] =
                  padded_pixel<C, IH, IW, PT, PL, T>(frame, oy * SH + k / KW, ox * SW + k % KW, nf * PE + pe);
            }
          }
          out.write(y);
        }
      }
    }
  }
}

#endif
