// a2qflow HLS library: common types shared by every unit.
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

#endif
