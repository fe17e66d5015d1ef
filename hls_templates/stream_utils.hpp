// Stream helpers: width conversion between a producer's PE and a consumer's SIMD, and the stream duplicator of a
// fork (a tensor read by two layers, e.g. a residual block's main and skip branches).
#ifndef A2Q_STREAM_UTILS_HPP
#define A2Q_STREAM_UTILS_HPP

#include "a2q_common.hpp"

// Width conversion at one beat per clock: a gather (OUT_W a multiple of IN_W) takes one input beat per iteration,
// a split (IN_W a multiple of OUT_W) gives one output beat per iteration, so a layer boundary costs
// max(input beats, output beats) cycles, not one per element. Widths where neither divides the other move one
// element per iteration (ELEMS cycles).
template <unsigned IN_W, unsigned OUT_W, unsigned ELEMS, typename T>
void convert_width(hls::stream<Word<T, IN_W> >& in, hls::stream<Word<T, OUT_W> >& out) {
  static_assert(ELEMS % IN_W == 0 && ELEMS % OUT_W == 0, "both beat widths must divide the frame");
  Word<T, IN_W> a;
  Word<T, OUT_W> b;
  if (OUT_W % IN_W == 0) {
    constexpr unsigned R = OUT_W / IN_W == 0 ? 1 : OUT_W / IN_W;
    for (unsigned i = 0; i < ELEMS / IN_W; i++) {
#pragma HLS pipeline II=1
      a = in.read();
      for (unsigned j = 0; j < IN_W; j++) {
#pragma HLS unroll
        b.v[(i % R) * IN_W + j] = a.v[j];
      }
      if (i % R == R - 1) out.write(b);
    }
    A2Q_LOG_ITERATIONS(ELEMS / IN_W);
  } else if (IN_W % OUT_W == 0) {
    constexpr unsigned R = IN_W / OUT_W == 0 ? 1 : IN_W / OUT_W;
    for (unsigned i = 0; i < ELEMS / OUT_W; i++) {
#pragma HLS pipeline II=1
      if (i % R == 0) a = in.read();
      for (unsigned j = 0; j < OUT_W; j++) {
#pragma HLS unroll
        b.v[j] = a.v[(i % R) * OUT_W + j];
      }
      out.write(b);
    }
    A2Q_LOG_ITERATIONS(ELEMS / OUT_W);
  } else {
    for (unsigned i = 0; i < ELEMS; i++) {
#pragma HLS pipeline II=1
      if (i % IN_W == 0) a = in.read();
      b.v[i % OUT_W] = a.v[i % IN_W];
      if (i % OUT_W == OUT_W - 1) out.write(b);
    }
    A2Q_LOG_ITERATIONS(ELEMS);
  }
}

// Fork: every beat of `in` is written to both outputs (FINN's DuplicateStreams, two outputs; a tensor read by
// more layers goes through a chain of them). Each output is a stream of its own, so a branch that holds data back
// (a line buffer, an MVAU) never stalls the other: the generator gives the branch that reaches the join without a frame
// buffer a FIFO deep enough to hold what the other branch holds back (hw/hls/design.py, skip_fifo_depths).
template <unsigned BEATS, unsigned W, typename T>
void duplicate_stream(hls::stream<Word<T, W> >& in, hls::stream<Word<T, W> >& out0,
                      hls::stream<Word<T, W> >& out1) {
  for (unsigned i = 0; i < BEATS; i++) {
#pragma HLS pipeline II=1
    const Word<T, W> w = in.read();
    out0.write(w);
    out1.write(w);
  }
  A2Q_LOG_ITERATIONS(BEATS);
}

#endif
