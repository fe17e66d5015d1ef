// a2q_iface.vh: the parameter and port lists the library's stream units share, one copy for all of them, as macros
//   (the lists differ in a width or a default, which a plain paste cannot carry):
//   `A2Q_STREAM_PORTS(IW, OW)  clock, synchronous reset, an IW-bit input stream and an OW-bit output stream, each
//                              with valid / ready (a transfer happens where both are high)
//   `A2Q_FOLD_DIMS             a folded MAC unit's shape: K inputs, C outputs computed SIMD x PE per cycle, the input
//                              bits and signedness
//   `A2Q_THR_PARAMS(AB, TB)    the multi-threshold output stage (ACC_BITS defaults to AB, THR_BITS to TB):
//                              out = OUT_BASE + #{l : acc >= T[c, l]}; OUT_W is the output activation bits when
//                              N_THR > 0, else ACC_BITS (the raw accumulator is the output)
// Included by a2q_mvau, a2q_mvau_packed, a2q_vvau, a2q_thr, a2q_stream, a2q_adapt; hw.rtl.generate.library_text
//   pastes it in place, so generated files are self-contained and each unit reads the same tokens as when it spelled
//   the lists out. The guard keeps one definition when several generated files are read in one tool session.
`ifndef A2Q_IFACE_VH
`define A2Q_IFACE_VH
`define A2Q_STREAM_PORTS(IW, OW) \
    input  wire          clk, \
    input  wire          rst, \
    input  wire [IW-1:0] in_data, \
    input  wire          in_valid, \
    output wire          in_ready, \
    output wire [OW-1:0] out_data, \
    output wire          out_valid, \
    input  wire          out_ready
`define A2Q_FOLD_DIMS \
    parameter integer K = 16, \
    parameter integer C = 8, \
    parameter integer SIMD = 4, \
    parameter integer PE = 2, \
    parameter integer IN_BITS = 4, \
    parameter integer IN_SIGNED = 0
`define A2Q_THR_PARAMS(AB, TB) \
    parameter integer ACC_BITS = AB, \
    parameter integer N_THR = 15, \
    parameter integer THR_BITS = TB, \
    parameter integer OUT_BASE = 0, \
    parameter integer OUT_W = 4
`endif
