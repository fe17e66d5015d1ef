// Stream helpers: width conversion between a producer's PE and a consumer's SIMD, and frame reading.
#ifndef A2Q_STREAM_UTILS_HPP
#define A2Q_STREAM_UTILS_HPP

#include "a2q_common.hpp"

template <unsigned IN_W, unsigned OUT_W, unsigned ELEMS, typename T>
void convert_width(hls::stream<Word<T, IN_W> >& in, hls::stream<Word<T, OUT_W> >& out) {
  static_assert(ELEMS % IN_W == 0 && ELEMS % OUT_W == 0, "both beat widths must divide the frame");
  Word<T, IN_W> a;
  Word<T, OUT_W> b;
  for (unsigned i = 0; i < ELEMS; i++) {
#pragma HLS pipeline II=1
    if (i % IN_W == 0) a = in.read();
    b.v[i % OUT_W] = a.v[i % IN_W];
    if (i % OUT_W == OUT_W - 1) out.write(b);
  }
}

// Read one frame of ELEMS elements (W per beat) into `frame`, in stream order (pool and sliding window buffer
// a whole frame before they emit).
template <unsigned ELEMS, unsigned W, typename T>
void read_frame(hls::stream<Word<T, W> >& in, T frame[ELEMS]) {
  static_assert(ELEMS % W == 0, "beat width must divide the frame");
  for (unsigned i = 0; i < ELEMS / W; i++) {
#pragma HLS pipeline II=1
    const Word<T, W> w = in.read();
    for (unsigned j = 0; j < W; j++) {
#pragma HLS unroll
      frame[i * W + j] = w.v[j];
    }
  }
}

#endif
