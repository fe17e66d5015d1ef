// a2qflow HLS library: common types shared by every unit, and what the MAC units (mvau, mvau_packed, vvau) share:
// the folding checks (A2QFold), their loop schedule (a2q_fold_loop) and one PE lane's multiply-accumulate with its
// overflow monitor (a2q_lane_mac).
//
// Streams carry `Word<T, N>`: N elements of type T moved in one beat (SIMD inputs or PE outputs). A plain
// struct keeps the generated code readable; Vitis HLS packs it into one FIFO word (aggregate).
// Feature maps stream in HWC order (channel fastest); dense vectors stream in index order.
#ifndef A2Q_COMMON_HPP
#define A2Q_COMMON_HPP

#include <ap_int.h>
#include <hls_stream.h>

#include <type_traits>

template <typename T, unsigned N>
struct Word {
  T v[N];
};

// Storage type of constant tables (weights, thresholds) holding W-bit signed values. For synthesis it is
// ap_int<W>, so ROMs are exactly W bits wide; in C simulation it is the smallest plain integer of at least W bits,
// which g++ constant-initializes (ap_int tables need run-time constructors and compile many times slower).
// Values are converted to their ap_int type where they are used, so both compute the same integers.
#ifdef __SYNTHESIS__
template <int W>
struct a2q_rom {
  typedef ap_int<W> type;
};
#else
template <int W>
struct a2q_rom {
  typedef typename std::conditional<
      (W <= 8), signed char,
      typename std::conditional<(W <= 16), short,
                                typename std::conditional<(W <= 32), int, long long>::type>::type>::type type;
};
#endif

// Smallest number of bits that holds the unsigned value n (at least 1): sizes counters at compile time.
constexpr unsigned a2q_clog2(unsigned long long n) { return n < 2 ? 1 : 1 + a2q_clog2(n >> 1); }

#ifdef A2Q_OVERFLOW_MONITOR
// C-simulation only: per layer, MAC outputs whose ACC_BITS value differs from a 64-bit shadow accumulator
// (an overflow event, as hw/reference.py counts them) and the number of MAC outputs seen.
struct A2QLayerMonitor {
  unsigned long long events;
  unsigned long long outputs;
};
inline A2QLayerMonitor& a2q_monitor(unsigned layer) {
  static A2QLayerMonitor counters[256];
  return counters[layer];
}
#endif

// The folding of a MAC unit (mvau, mvau_packed, vvau): K = SF x SIMD inputs per output channel and C = NF x PE
// output channels, so one output vector takes NF * SF cycles at II = 1. One copy of the checks for every unit: a
// folding the compiler should never choose stops the C++ build with the rule it breaks.
template <unsigned K, unsigned C, unsigned SIMD, unsigned PE>
struct A2QFold {
  static_assert(K % SIMD == 0, "SIMD must divide K");
  static_assert(C % PE == 0, "PE must divide C");
  static constexpr unsigned SF = K / SIMD;  // synapse folds: cycles per output channel group
  static constexpr unsigned NF = C / PE;    // neuron folds: channel groups per input vector
};

// One PE lane's accumulator in mvau and vvau; the monitor build adds a shadow of what an unbounded accumulator
// would hold, so the overflow counter compares the two (an A2Q plan proves they never differ).
template <int ACC_BITS>
struct A2QAcc {
  ap_int<ACC_BITS> v;
#ifdef A2Q_OVERFLOW_MONITOR
  long long wide;
#endif
};

// One PE lane's step in mvau and vvau (one source for both units): SIMD products x.v[x0 + s] * w[s] at their full
// TI + TW width (a DSP or a LUT multiplier maps them exactly), an adder tree and the accumulator at ACC_BITS,
// restarted at synapse fold sf == 0. ap_int<ACC_BITS> wraps modulo 2^ACC_BITS, so the result is the same for any
// summation order and equals the golden model's wrap mode. On the last fold (sf == SF - 1) the monitor build counts
// one output of layer LAYER, and one overflow event where the wrapped sum differs from the exact one.
// Returns the lane's accumulator after this step.
template <unsigned SIMD, unsigned SF, unsigned LAYER, typename TW, int ACC_BITS, typename TI, unsigned N,
          typename TW_ROM>
inline ap_int<ACC_BITS> a2q_lane_mac(A2QAcc<ACC_BITS>& acc, const Word<TI, N>& x, unsigned x0,
                                     const TW_ROM w[SIMD], unsigned sf) {
#pragma HLS inline
  typedef ap_int<ACC_BITS> acc_t;
  typedef ap_int<TI::width + TW::width> prod_t;  // exact product of an N-bit input and an M-bit weight
  acc_t tree = 0;  // adder tree at ACC_BITS
#ifdef A2Q_OVERFLOW_MONITOR
  long long tree_wide = 0;
#endif
  for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS unroll
    const prod_t p = x.v[x0 + s] * TW(w[s]);
    tree += p;
#ifdef A2Q_OVERFLOW_MONITOR
    tree_wide += (long long)p.to_int64();
#endif
  }
  acc.v = (sf == 0 ? acc_t(0) : acc.v) + tree;
#ifdef A2Q_OVERFLOW_MONITOR
  acc.wide = (sf == 0 ? 0LL : acc.wide) + tree_wide;
  if (sf == SF - 1) {
    A2QLayerMonitor& m = a2q_monitor(LAYER);
    m.outputs += 1;
    if (acc.v.to_int64() != acc.wide) m.events += 1;
  }
#endif
  return acc.v;
}

// Iterations of each stage's pipelined loop (= clock cycles at II = 1) in one call of the top, in call order: the
// monitor build (C simulation only) logs one count per stage call; tb.cpp writes them with --loops. The window
// kernels count their data-dependent loop as it runs; fixed-count kernels log their trip count.
#ifdef A2Q_OVERFLOW_MONITOR
#include <vector>
inline std::vector<unsigned long long>& a2q_loop_log() {
  static std::vector<unsigned long long> log;
  return log;
}
#define A2Q_LOG_ITERATIONS(n) a2q_loop_log().push_back((unsigned long long)(n))
#else
#define A2Q_LOG_ITERATIONS(n) ((void)0)
#endif

// The MAC units' schedule (one source for mvau, mvau_packed and vvau): ROWS input vectors x NF neuron folds x SF
// synapse folds, one pipelined iteration each (II = 1, so NF * SF cycles per vector as A2QFold says). Each
// iteration calls beat(nf, sf, y), which reads the iteration's input word and sets y's PE outputs; the last synapse
// fold of a neuron fold writes them. Logs ROWS * NF * SF iterations (A2Q_LOG_ITERATIONS).
template <unsigned ROWS, unsigned NF, unsigned SF, typename TO, unsigned PE, typename Beat>
inline void a2q_fold_loop(hls::stream<Word<TO, PE> >& out, Beat beat) {
#pragma HLS inline
  for (unsigned r = 0; r < ROWS; r++) {
    for (unsigned nf = 0; nf < NF; nf++) {
      for (unsigned sf = 0; sf < SF; sf++) {
#pragma HLS pipeline II=1
        Word<TO, PE> y;
        beat(nf, sf, y);
        if (sf == SF - 1) out.write(y);
      }
    }
  }
  A2Q_LOG_ITERATIONS(ROWS * NF * SF);
}

#endif
