// Stream width conversion between a producer's PE and a consumer's SIMD (ELEMS elements per frame, in order).
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

#endif
