// Matrix-vector-activation unit (MVAU) with SIMD / PE folding and an ACC_BITS-wide accumulator.
//
// Computes, for each of ROWS input vectors x (length K), acc[c] = sum_k W[c][k] * x[k] for C output channels
// and streams act(acc[c]). PE channels are computed in parallel, each over SIMD inputs per cycle, so one vector
// takes (C/PE) * (K/SIMD) cycles (II = 1). Products keep their full TI + TW width (so a DSP or a LUT multiplier
// maps them exactly); only the adder tree and the accumulator are ACC_BITS wide. ap_int<ACC_BITS> arithmetic
// wraps modulo 2^ACC_BITS, so the result is the same for any summation order and equals the golden model's wrap
// mode even for a width below the exact bound.
//
// Weights are stored as TW_ROM (a2q_rom<M>::type) and used as TW (ap_int<M>); they are laid out [PE][(C/PE)*(K/SIMD)][SIMD]: weights[pe][nf*SF + sf][s] = W[nf*PE + pe][sf*SIMD + s].
#ifndef A2Q_MVAU_HPP
#define A2Q_MVAU_HPP

#include "a2q_common.hpp"

// The MVAU input buffer, shared by mvau and mvau_packed: neuron fold 0 reads the input vector from the stream word by
// word and keeps it in inbuf; every later fold re-reads the kept word (the vector is streamed in once).
template <typename TI, unsigned SIMD, unsigned SF>
inline Word<TI, SIMD> mvau_input(hls::stream<Word<TI, SIMD> >& in, Word<TI, SIMD> inbuf[SF], unsigned nf, unsigned sf) {
#pragma HLS inline
  if (nf == 0) {
    const Word<TI, SIMD> x = in.read();
    inbuf[sf] = x;
    return x;
  }
  return inbuf[sf];
}

template <unsigned K, unsigned C, unsigned SIMD, unsigned PE, unsigned ROWS, int ACC_BITS, unsigned LAYER,
          typename TI, typename TW, typename TO, typename Activation, typename TW_ROM>
void mvau(hls::stream<Word<TI, SIMD> >& in, hls::stream<Word<TO, PE> >& out,
          const TW_ROM weights[PE][(C / PE) * (K / SIMD)][SIMD], const Activation& act) {
  constexpr unsigned SF = A2QFold<K, C, SIMD, PE>::SF;  // checks the folding
  constexpr unsigned NF = A2QFold<K, C, SIMD, PE>::NF;

#pragma HLS array_partition variable=weights complete dim=1
#pragma HLS array_partition variable=weights complete dim=3

  Word<TI, SIMD> inbuf[SF];  // the current input vector, re-read for every neuron fold
  A2QAcc<ACC_BITS> acc[PE];
#pragma HLS array_partition variable=acc complete

  a2q_fold_loop<ROWS, NF, SF>(out, [&](unsigned nf, unsigned sf, Word<TO, PE>& y) {
#pragma HLS inline
    const Word<TI, SIMD> x = mvau_input<TI, SIMD, SF>(in, inbuf, nf, sf);
    for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS unroll
      y.v[pe] = act.activate(nf, pe, a2q_lane_mac<SIMD, SF, LAYER, TW>(acc[pe], x, 0, weights[pe][nf * SF + sf], sf));
    }
  });
}

// mvau_packed: the MVAU with its PE channels grouped LANES per multiplier (hw/compiler/dsp.py; the
// WP486 style of packing, made exact by the plan's proof that each channel's dot product fits ACC_BITS bits).
//
// Same streams, folding and activations as mvau. weights[g][nf*SF + sf][s] is the packed operand
// sum_l W[nf*PE + g*LANES + l][sf*SIMD + s] * 2^(l*ACC_BITS), AW bits signed (zero lanes pad the last group). Each
// SIMD element is one AW x (TI::width + 1) multiply whose low LANES*ACC_BITS bits carry all LANES products; the
// group accumulator starts at 2^(ACC_BITS-1) in every lane, so every lane field is unsigned and never borrows, and
// lane l is its field with the top bit inverted. Vitis maps the multiply-accumulate to one DSP48 per group and SIMD
// element where AW <= 25 (27 on DSP48E2) and LANES*ACC_BITS <= 48.
template <unsigned K, unsigned C, unsigned SIMD, unsigned PE, unsigned LANES, unsigned ROWS, int ACC_BITS, int AW,
          unsigned LAYER, typename TI, typename TO, typename Activation, typename TW_ROM>
void mvau_packed(hls::stream<Word<TI, SIMD> >& in, hls::stream<Word<TO, PE> >& out,
                 const TW_ROM weights[(PE + LANES - 1) / LANES][(C / PE) * (K / SIMD)][SIMD],
                 const Activation& act) {
  constexpr unsigned SF = A2QFold<K, C, SIMD, PE>::SF;  // checks the folding
  constexpr unsigned NF = A2QFold<K, C, SIMD, PE>::NF;
  constexpr unsigned G = (PE + LANES - 1) / LANES;
  constexpr int LW = LANES * ACC_BITS;
  typedef ap_uint<LW> lanes_t;                 // LANES fields of ACC_BITS, modulo 2^LW
  typedef ap_int<AW> packed_t;                 // one packed weight operand
  typedef ap_int<TI::width + 1> x_t;           // the shared input as a signed operand
  typedef ap_int<AW + TI::width + 1> prod_t;   // exact packed product
  typedef ap_int<ACC_BITS> acc_t;

#pragma HLS array_partition variable=weights complete dim=1
#pragma HLS array_partition variable=weights complete dim=3

  lanes_t bias = 0;
  for (unsigned l = 0; l < LANES; l++) bias[l * ACC_BITS + ACC_BITS - 1] = 1;
  Word<TI, SIMD> inbuf[SF];
  lanes_t acc[G];
#pragma HLS array_partition variable=acc complete
#ifdef A2Q_OVERFLOW_MONITOR
  long long wide[G * LANES];  // shadow per-lane accumulators: what unbounded accumulators would hold
#endif

  a2q_fold_loop<ROWS, NF, SF>(out, [&](unsigned nf, unsigned sf, Word<TO, PE>& y) {
#pragma HLS inline
    const Word<TI, SIMD> x = mvau_input<TI, SIMD, SF>(in, inbuf, nf, sf);
    for (unsigned g = 0; g < G; g++) {
#pragma HLS unroll
      lanes_t tree = 0;
      for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS unroll
        const packed_t w = packed_t(weights[g][nf * SF + sf][s]);
        const prod_t p = x_t(x.v[s]) * w;
        tree += lanes_t(p);  // low LW bits, two's complement
#ifdef A2Q_OVERFLOW_MONITOR
        long long rest = w.to_int64();  // unpack the lanes' weights: each fits ACC_BITS signed bits
        for (unsigned l = 0; l < LANES; l++) {
          const long long wl = (l + 1 == LANES) ? rest : ap_int<ACC_BITS>(rest).to_int64();
          rest = (rest - wl) >> ACC_BITS;
          const long long before = (sf == 0 && s == 0) ? 0LL : wide[g * LANES + l];
          wide[g * LANES + l] = before + wl * (long long)x.v[s].to_int64();
        }
#endif
      }
      acc[g] = (sf == 0 ? bias : acc[g]) + tree;
      for (unsigned l = 0; l < LANES; l++) {
#pragma HLS unroll
        const unsigned pe = g * LANES + l;
        if (pe < PE) {
          ap_uint<ACC_BITS> field = acc[g].range(l * ACC_BITS + ACC_BITS - 1, l * ACC_BITS);
          field[ACC_BITS - 1] = !field[ACC_BITS - 1];
          const acc_t lane = acc_t(field);
#ifdef A2Q_OVERFLOW_MONITOR
          if (sf == SF - 1) {
            A2QLayerMonitor& m = a2q_monitor(LAYER);
            m.outputs += 1;
            if (lane.to_int64() != wide[pe]) m.events += 1;
          }
#endif
          y.v[pe] = act.activate(nf, pe, lane);
        }
      }
    }
  });
}

#endif
