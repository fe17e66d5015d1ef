// Sliding-window (im2col) generators on an HWC stream, on a line buffer, at one loop iteration per clock (II = 1).
//
// Each kernel below is ONE pipelined loop whose every iteration may read one input beat (IN_W elements: a pixel
// when IN_W = IC, the producer's PE otherwise) and write one output beat:
//   * read pixel p (non-blocking: when a beat is waiting) while p < first + DEPTH, DEPTH = SPAN + 1, where
//     SPAN = (KH - 1) * IW + KW is the most pixels a window spans ((KH - 1) rows plus KW pixels) and `first` is the
//     first pixel this or a later window needs, so the reader runs ahead of the windows;
//   * latch window (oy, ox) into a register once its last pixel has been read, then write it out in NB beats.
// Since DEPTH > SPAN, some window is always ready when the reader must wait, so the loop cannot stall, and the one
// pixel beyond the span lets the next pixel stream in while a window is latched (with DEPTH = SPAN, reading and
// latching alternate). With one window per beat a frame takes max(input beats, lag(last window) + 1,
// lag(first window) + output beats) iterations, lag(w) = the input beats up to window w's last pixel
// (tests/test_hls_window.py): 784 + 1 for a valid 5x5 conv or a 2x2 pool on 28x28, 59 + 784 for a 5x5 "same" conv
// on 28x28 (its first window ends at pixel (2, 2)). The RTL twin hw/rtl/verilog/a2q_swg.v keeps SH more rows so
// consecutive frames overlap (its II is 784 there); a per-call C++ function cannot overlap frames.
//
// Memory: a window is read in one clock (KH * KW pixels), so the buffer is KH * KW banks, one write and one read
// port each: pixel (y, x) lives in bank (y mod KH, x mod KW) at address ((y / KH) mod RB) * XB + x / KW, so the
// KH x KW pixels of any window sit in KH x KW different banks and each pixel is stored once. XB = ceil(IW / KW)
// column groups; RB = 2^ceil(log2(ceil(DEPTH / (KH * IW)))) row groups (1 whenever IW > KW; at most what covers
// the frame's rows): two pixels share an address only KH * RB rows apart, at least DEPTH pixels, so none the
// reader may still need is overwritten. In total KH * KW * RB * XB pixels of IC channels, KH rows rounded up to
// whole column groups when IW > KW (LeNet's first conv: 150 pixels; a frame is 784, the RTL's KH x KW copies
// 25 x 256). The latch reads each bank once and routes bank (by, bx) to window position ((by - ya) mod KH,
// (bx - xa) mod KW).
//
// Emitted window orders (the weights' layouts, unchanged from the frame-buffer generator):
//   sliding_window     for every output pixel in raster order, the KH*KW*IC window in (kh, kw, ic) order
//                      (hw.compiler.ir.conv_weights_ohwi), SIMD elements per beat, K / SIMD beats per window;
//   dw_sliding_window  per output pixel, channel group nf (PE channels) x kernel fold sf (SIMD window positions in
//                      (kh, kw) order) as one beat of PE * SIMD elements, v[pe * SIMD + s] = window of channel
//                      nf * PE + pe at position sf * SIMD + s (vvau.hpp); (C / PE) * (K / SIMD) beats per window;
//   maxpool (pool.hpp) the max of each channel's window, W channels per beat, C / W beats per output pixel.
// Zero padding (PT, PL, PB, PR = top, left, bottom, right) and strides as the golden model. FINN's
// ConvolutionInputGenerator is the reference design (its padding is a separate FMPadding stage that streams the
// padded frame; here padded positions are zeros chosen at latch time and never streamed).
#ifndef A2Q_SLIDING_WINDOW_HPP
#define A2Q_SLIDING_WINDOW_HPP

#include "a2q_common.hpp"
#include "stream_utils.hpp"

#ifndef __SYNTHESIS__
#include <cstdio>
#include <cstdlib>
#endif

// The smallest power of two >= n (n >= 1).
constexpr unsigned a2q_pow2_ceil(unsigned n) { return n <= 1 ? 1 : 2 * a2q_pow2_ceil((n + 1) / 2); }

// The window schedule of one frame (which pixel the next input beat fills, which window is latched next) and the
// geometry; the memories themselves are locals of window_loop, where their pragmas apply.
template <unsigned IC_, unsigned IH, unsigned IW, unsigned KH, unsigned KW, unsigned SH, unsigned SW, unsigned PT,
          unsigned PL, unsigned PB, unsigned PR, unsigned IN_W_>
struct WindowSchedule {
  static constexpr unsigned IC = IC_, IN_W = IN_W_;
  static constexpr unsigned OH = (IH + PT + PB - KH) / SH + 1;
  static constexpr unsigned OW = (IW + PL + PR - KW) / SW + 1;
  static constexpr unsigned KK = KH * KW;
  static constexpr unsigned SPAN = (KH - 1) * IW + KW;  // pixels one window spans at most
  static constexpr unsigned DEPTH = SPAN + 1;            // pixels the reader runs ahead of the first one needed
  // row groups per bank: two pixels share an address only KH * RB rows apart, at least DEPTH pixels, or never when
  // the row groups cover the frame (a global pool: KH = IH, one group)
  static constexpr unsigned RB_READ_AHEAD = a2q_pow2_ceil((DEPTH + KH * IW - 1) / (KH * IW));
  static constexpr unsigned RB_FRAME = a2q_pow2_ceil((IH + KH - 1) / KH);
  static constexpr unsigned RB = RB_READ_AHEAD < RB_FRAME ? RB_READ_AHEAD : RB_FRAME;
  static constexpr unsigned XB = (IW + KW - 1) / KW;                        // column groups per bank
  static constexpr unsigned BANK_DEPTH = RB * XB;
  static constexpr unsigned PIXELS = IH * IW;
  static constexpr unsigned BEATS_PER_PIXEL = IC / IN_W;
  static_assert(IC % IN_W == 0, "the input beat width must divide the channel count");
  static_assert(PT < KH && PB < KH && PL < KW && PR < KW, "padding must be smaller than the kernel");
  static_assert(IH + PT + PB >= KH && IW + PL + PR >= KW, "the kernel must fit the padded frame");

  unsigned px = 0, cb = 0;  // the pixel the next input beat belongs to, and its beat within the pixel
  unsigned wy = 0, wx = 0;  // that pixel's row and column
  unsigned oy = 0, ox = 0;  // the next window to latch

  static unsigned bank(unsigned y, unsigned x) { return (y % KH) * KW + x % KW; }
  static unsigned address(unsigned y, unsigned x) { return ((y / KH) & (RB - 1)) * XB + x / KW; }

  // First row / column of window (oy, ox) inside the frame (padding clipped).
  static unsigned y0(unsigned oy) { return oy * SH > PT ? oy * SH - PT : 0; }
  static unsigned x0(unsigned ox) { return ox * SW > PL ? ox * SW - PL : 0; }
  // The first pixel this or a later window needs: the window's top-left pixel, or the start of its row when the
  // next row of windows starts on the same (top-padding-clipped) row; every pixel once the windows are done.
  unsigned first_needed() const {
#pragma HLS inline
    if (oy >= OH) return PIXELS;
    const bool same_row_next = oy + 1 < OH && y0(oy + 1) == y0(oy);
    return y0(oy) * IW + (same_row_next ? 0 : x0(ox));
  }
  // The last pixel window (oy, ox) needs (padding clipped).
  unsigned last_needed() const {
#pragma HLS inline
    const unsigned y1 = oy * SH + KH - 1 - PT, x1 = ox * SW + KW - 1 - PL;
    return (y1 < IH ? y1 : IH - 1) * IW + (x1 < IW ? x1 : IW - 1);
  }
  bool more() const { return px < PIXELS || oy < OH; }
  bool can_read() const { return px < PIXELS && px < first_needed() + DEPTH; }
  bool window_ready() const { return oy < OH && last_needed() < px; }

  // Write one input beat into its pixel's bank.
  template <typename T>
  void read_beat(hls::stream<Word<T, IN_W> >& in, T buf[KK][BANK_DEPTH][IC]) {
#pragma HLS inline
    const Word<T, IN_W> w = in.read();
    const unsigned b = bank(wy, wx), a = address(wy, wx);
    for (unsigned j = 0; j < IN_W; j++) {
#pragma HLS unroll
      buf[b][a][cb * IN_W + j] = w.v[j];
    }
    if (cb + 1 < BEATS_PER_PIXEL) {
      cb++;
      return;
    }
    cb = 0;
    px++;
    if (wx + 1 == IW) {
      wx = 0;
      wy++;
    } else {
      wx++;
    }
  }
  // Copy window (oy, ox) into `win` (zeros where it covers the padding) and move on to the next window: one read
  // per bank, bank (by, bx) holding the window position (kh, kw) with (ya + kh) mod KH = by, (xa + kw) mod KW = bx.
  template <typename T>
  void latch(const T buf[KK][BANK_DEPTH][IC], T win[KK][IC]) {
#pragma HLS inline
    const int ya = int(oy * SH) - int(PT), xa = int(ox * SW) - int(PL);
    const unsigned ry = unsigned(ya + int(KH)) % KH, rx = unsigned(xa + int(KW)) % KW;  // ya, xa mod KH, KW
    for (unsigned by = 0; by < KH; by++) {
#pragma HLS unroll
      for (unsigned bx = 0; bx < KW; bx++) {
#pragma HLS unroll
        const unsigned kh = (by + KH - ry) % KH, kw = (bx + KW - rx) % KW;
        const int y = ya + int(kh), x = xa + int(kw);
        const bool inside = y >= 0 && y < int(IH) && x >= 0 && x < int(IW);
        const unsigned a = inside ? address(unsigned(y), unsigned(x)) : 0;
        for (unsigned c = 0; c < IC; c++) {
#pragma HLS unroll
          win[kh * KW + kw][c] = inside ? buf[by * KW + bx][a][c] : T(0);
        }
      }
    }
    if (ox + 1 == OW) {
      ox = 0;
      oy++;
    } else {
      ox++;
    }
  }
};

// The one pipelined loop of every window kernel: read when the buffer has room, latch a window when its last pixel
// is in, write NB beats per window (beat(win, kb) builds beat kb). Returns the iterations (clock cycles at II = 1).
template <class S, unsigned NB, typename T, typename TOUT, class Beat>
unsigned long long window_loop(hls::stream<Word<T, S::IN_W> >& in, hls::stream<TOUT>& out, const Beat& beat) {
  T buf[S::KK][S::BANK_DEPTH][S::IC];  // the line buffer in KH * KW banks
  T win[S::KK][S::IC];            // the latched window
#pragma HLS array_partition variable=buf complete dim=1
#pragma HLS array_partition variable=buf complete dim=3
#pragma HLS array_partition variable=win complete dim=0
  constexpr unsigned TRIPS_MIN = S::PIXELS * S::BEATS_PER_PIXEL;
  constexpr unsigned TRIPS_MAX = S::PIXELS * S::BEATS_PER_PIXEL + S::OH * S::OW * NB;
  (void)TRIPS_MIN;  // read only by the loop_tripcount pragma
  (void)TRIPS_MAX;
  S s;
  unsigned kb = 0;  // beat of the latched window written next (0: none latched)
  unsigned long long iterations = 0;
window_loop:
  while (s.more() || kb != 0) {
#pragma HLS pipeline II=1
#pragma HLS loop_tripcount min=TRIPS_MIN max=TRIPS_MAX
    // Within an iteration the latch never reads the address the input beat is written to (that pixel comes after
    // every latched pixel and fewer than DEPTH pixels after `first`, so it shares no address with them). Across
    // iterations there IS a dependence, deliberately not hidden by a pragma: a window's last pixel is written in
    // one iteration and latched in the next (distance 1).
#pragma HLS dependence variable=buf intra false
    // Decided on the state before this iteration's latch, so the read never overwrites the window being latched;
    // non-blocking, so a window that is ready never waits for input it does not need (a blocking read there makes
    // a residual block need a deeper skip FIFO: the skip branch waits for this window, this read for the fork).
    const bool rd = s.can_read() && !in.empty();
    bool wr = kb != 0;
    if (!wr && s.window_ready()) {
      s.latch(buf, win);
      wr = true;
    }
#ifndef __SYNTHESIS__
    if (!wr && !rd) {  // C simulation runs each stage on a complete input: nothing to do means a short input
      std::fprintf(stderr, "window_loop: input ended at pixel %u of %u\n", s.px, S::PIXELS);
      std::abort();
    }
#endif
    if (wr) {
      out.write(beat(win, kb));
      kb = kb + 1 == NB ? 0 : kb + 1;
    }
    if (rd) s.read_beat(in, buf);
    iterations++;
  }
  return iterations;
}

// Beat kb of a conv window: SIMD elements of the (kh, kw, ic)-ordered window.
template <unsigned KK, unsigned IC, unsigned SIMD, typename T>
struct ConvBeat {
  Word<T, SIMD> operator()(const T win[KK][IC], unsigned kb) const {
#pragma HLS inline
    Word<T, SIMD> y;
    for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS unroll
      const unsigned k = kb * SIMD + s;
      y.v[s] = win[k / IC][k % IC];
    }
    return y;
  }
};

// Beat kb = nf * (K / SIMD) + sf of a depthwise window: PE channels x SIMD positions.
template <unsigned KK, unsigned IC, unsigned SIMD, unsigned PE, typename T>
struct DepthwiseBeat {
  Word<T, PE * SIMD> operator()(const T win[KK][IC], unsigned kb) const {
#pragma HLS inline
    const unsigned nf = kb / (KK / SIMD), sf = kb % (KK / SIMD);
    Word<T, PE * SIMD> y;
    for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS unroll
      for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS unroll
        y.v[pe * SIMD + s] = win[sf * SIMD + s][nf * PE + pe];
      }
    }
    return y;
  }
};

template <unsigned IC, unsigned IH, unsigned IW, unsigned KH, unsigned KW, unsigned SH, unsigned SW,
          unsigned PT, unsigned PL, unsigned PB, unsigned PR, unsigned IN_W, unsigned SIMD, typename T>
void sliding_window(hls::stream<Word<T, IN_W> >& in, hls::stream<Word<T, SIMD> >& out) {
  constexpr unsigned K = KH * KW * IC;
  static_assert(K % SIMD == 0, "SIMD must divide KH*KW*IC");
  typedef WindowSchedule<IC, IH, IW, KH, KW, SH, SW, PT, PL, PB, PR, IN_W> S;
  const unsigned long long n = window_loop<S, K / SIMD, T>(in, out, ConvBeat<KH * KW, IC, SIMD, T>());
  A2Q_LOG_ITERATIONS(n);
  (void)n;
}

template <unsigned C, unsigned IH, unsigned IW, unsigned KH, unsigned KW, unsigned SH, unsigned SW,
          unsigned PT, unsigned PL, unsigned PB, unsigned PR, unsigned IN_W, unsigned SIMD, unsigned PE, typename T>
void dw_sliding_window(hls::stream<Word<T, IN_W> >& in, hls::stream<Word<T, PE * SIMD> >& out) {
  constexpr unsigned K = KH * KW;
  static_assert(K % SIMD == 0, "SIMD must divide KH*KW");
  static_assert(C % PE == 0, "PE must divide the channel count");
  typedef WindowSchedule<C, IH, IW, KH, KW, SH, SW, PT, PL, PB, PR, IN_W> S;
  const unsigned long long n =
      window_loop<S, (C / PE) * (K / SIMD), T>(in, out, DepthwiseBeat<K, C, SIMD, PE, T>());
  A2Q_LOG_ITERATIONS(n);
  (void)n;
}

#endif
