// Sliding-window (im2col) generator for a convolution on an HWC stream, on a line buffer.
//
// Emits, for every output pixel in raster order, the KH*KW*IC window in (kh, kw, ic) order, SIMD elements per beat,
// with integer-zero padding (PT, PL, PB, PR = top, left, bottom, right). This is the order hw.ir.conv_weights_ohwi
// gives the weights. Input beats (IN_W elements) are read only as far as the window about to be emitted needs, into
// a circular line buffer of KH - 1 rows plus KW pixels of IC channels (plus one beat of overrun) instead of a whole
// frame: a window spans at most SPAN = ((KH - 1) * IW + KW) * IC consecutive stream elements, counted from the first
// element this or a later window needs, so nothing still needed is ever overwritten. The rest of the frame (rows no
// window reaches) is read after the last window. The RTL twin is hw/rtl/verilog/a2q_swg.v; FINN's
// ConvolutionInputGenerator is the reference design.
//
// dw_sliding_window feeds a vector-vector unit (vvau.hpp: depthwise convolution, average pooling): for every output
// pixel it emits channel group nf (PE channels) x kernel fold sf (SIMD window positions in (kh, kw) order) as one
// beat of PE * SIMD elements, v[pe * SIMD + s] = window of channel nf * PE + pe at position sf * SIMD + s.
#ifndef A2Q_SLIDING_WINDOW_HPP
#define A2Q_SLIDING_WINDOW_HPP

#include "a2q_common.hpp"
#include "stream_utils.hpp"

// The line buffer of one frame: element i of the HWC stream lives at buf[i % DEPTH] until it is overwritten.
template <unsigned IC, unsigned IH, unsigned IW, unsigned KH, unsigned KW, unsigned SH, unsigned SW, unsigned PT,
          unsigned PL, unsigned IN_W, typename T>
struct LineBuffer {
  static constexpr unsigned SPAN = ((KH - 1) * IW + KW) * IC;
  static constexpr unsigned DEPTH = SPAN + IN_W - 1;  // a beat may run IN_W - 1 elements past the window's end
  static constexpr unsigned ELEMS = IH * IW * IC;
  static_assert(ELEMS % IN_W == 0, "input beat width must divide the feature map");
  T buf[DEPTH];
  unsigned filled = 0;  // elements of the frame read so far

  void read_beat(hls::stream<Word<T, IN_W> >& in) {
    const Word<T, IN_W> w = in.read();
    for (unsigned j = 0; j < IN_W; j++) {
#pragma HLS unroll
      buf[(filled + j) % DEPTH] = w.v[j];
    }
    filled += IN_W;
  }
  // Read until the last element window (oy, ox) needs has arrived.
  void fill_window(hls::stream<Word<T, IN_W> >& in, unsigned oy, unsigned ox) {
    const int y1 = int(oy * SH + KH - 1) - int(PT), x1 = int(ox * SW + KW - 1) - int(PL);
    const unsigned ly = y1 < int(IH) ? unsigned(y1) : IH - 1, lx = x1 < int(IW) ? unsigned(x1) : IW - 1;
    const unsigned need = (ly * IW + lx) * IC + IC;
    while (filled < need) read_beat(in);
  }
  void drain(hls::stream<Word<T, IN_W> >& in) {
    while (filled < ELEMS) read_beat(in);
  }
  // Element (py, px, c) of the zero-padded frame (py, px count from the padded top-left corner).
  T at(unsigned py, unsigned px, unsigned c) const {
#pragma HLS inline
    const int iy = int(py) - int(PT), ix = int(px) - int(PL);
    const bool inside = iy >= 0 && iy < int(IH) && ix >= 0 && ix < int(IW);
    return inside ? buf[unsigned((iy * int(IW) + ix) * int(IC) + int(c)) % DEPTH] : T(0);
  }
};

template <unsigned IC, unsigned IH, unsigned IW, unsigned KH, unsigned KW, unsigned SH, unsigned SW,
          unsigned PT, unsigned PL, unsigned PB, unsigned PR, unsigned IN_W, unsigned SIMD, typename T>
void sliding_window(hls::stream<Word<T, IN_W> >& in, hls::stream<Word<T, SIMD> >& out) {
  constexpr unsigned OH = (IH + PT + PB - KH) / SH + 1;
  constexpr unsigned OW = (IW + PL + PR - KW) / SW + 1;
  constexpr unsigned K = KH * KW * IC;
  static_assert(K % SIMD == 0, "SIMD must divide KH*KW*IC");

  LineBuffer<IC, IH, IW, KH, KW, SH, SW, PT, PL, IN_W, T> lb;
emit_windows:
  for (unsigned oy = 0; oy < OH; oy++) {
    for (unsigned ox = 0; ox < OW; ox++) {
      lb.fill_window(in, oy, ox);
      for (unsigned kb = 0; kb < K / SIMD; kb++) {
#pragma HLS pipeline II=1
        Word<T, SIMD> y;
        for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS unroll
          const unsigned k = kb * SIMD + s;
          const unsigned ic = k % IC, kw = (k / IC) % KW, kh = k / (IC * KW);
          y.v[s] = lb.at(oy * SH + kh, ox * SW + kw, ic);
        }
        out.write(y);
      }
    }
  }
  lb.drain(in);
}

template <unsigned C, unsigned IH, unsigned IW, unsigned KH, unsigned KW, unsigned SH, unsigned SW,
          unsigned PT, unsigned PL, unsigned PB, unsigned PR, unsigned IN_W, unsigned SIMD, unsigned PE, typename T>
void dw_sliding_window(hls::stream<Word<T, IN_W> >& in, hls::stream<Word<T, PE * SIMD> >& out) {
  constexpr unsigned OH = (IH + PT + PB - KH) / SH + 1;
  constexpr unsigned OW = (IW + PL + PR - KW) / SW + 1;
  constexpr unsigned K = KH * KW;
  static_assert(K % SIMD == 0, "SIMD must divide KH*KW");
  static_assert(C % PE == 0, "PE must divide the channel count");

  LineBuffer<C, IH, IW, KH, KW, SH, SW, PT, PL, IN_W, T> lb;
emit_dw_windows:
  for (unsigned oy = 0; oy < OH; oy++) {
    for (unsigned ox = 0; ox < OW; ox++) {
      lb.fill_window(in, oy, ox);
      for (unsigned nf = 0; nf < C / PE; nf++) {
        for (unsigned sf = 0; sf < K / SIMD; sf++) {
#pragma HLS pipeline II=1
          Word<T, PE * SIMD> y;
          for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS unroll
            for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS unroll
              const unsigned k = sf * SIMD + s;
              y.v[pe * SIMD + s] = lb.at(oy * SH + k / KW, ox * SW + k % KW, nf * PE + pe);
            }
          }
          out.write(y);
        }
      }
    }
  }
  lb.drain(in);
}

#endif
