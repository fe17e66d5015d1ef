// a2q_mvau_packed: the folded MVAU with its PE lanes grouped LANES per multiplier (hw/compiler/dsp.py, docs/rtl.md).
//
// Same streams, folding, memories and thresholds as a2q_mvau; only the multiply-accumulate differs. The PE lanes
// form GROUPS = ceil(PE / LANES) groups of LANES output channels (the last group padded with zero-weight lanes).
// A group's weights are one packed operand per SIMD element, W = sum_l w_l * 2^(l*ACC_BITS), AW bits signed, stored
// pre-packed in the weight memory; x * W is one multiply whose LANES*ACC_BITS low bits carry all LANES products.
// The group accumulator starts at BIAS = 2^(ACC_BITS-1) in every lane, so every lane field is unsigned
// (acc_l + 2^(ACC_BITS-1)) and never borrows from its neighbour; lane l is its field with the top bit inverted.
// Exact only because the plan proved every channel's dot product fits ACC_BITS bits for all inputs (the exact
// bound <= ACC_BITS); the plan records which bound permits the LANES (plan.json dsp_proof).
//
// Written for DSP inference, no primitive instantiated: with SIMD = 1 the operand registers, the product register
// and the accumulator (its first value the constant BIAS) are one DSP48E1 / DSP48E2 in yosys' synth_xilinx; with
// SIMD > 1 each product is a DSP and the adder tree stays in logic. iCE40: yosys synth_ice40 -dsp infers each
// packed multiply into one SB_MAC16 by itself (its mul2dsp rule: operands <= 16 bits, which the plan's lane rule
// guarantees, and a product of >= 11 bits, which a packed product always is), so SB_MAC16 is never instantiated;
// measured on the UP5K demo (fc0 at SIMD 4 x PE 4, 2 lanes: 8 SB_MAC16, nextpnr-ice40 places all 8). Unpacked
// 4x4-bit products (9 bits) stay in logic cells, which is why the plan's hw.dsp.max_slices decides which layers
// are packed: every packed multiply becomes a slice.
//
// Memories, initialised by $readmemh from files the generator writes:
//   WEIGHT_FILE: word nf*SF + sf holds the packed operand of group g, element s at bits (g*SIMD + s)*AW
//                (lane l of group g is channel nf*PE + g*LANES + l);
//   THR_FILE:    word nf holds T[nf*PE + p][l] at bits (p*N_THR + l)*THR_BITS (as in a2q_mvau).
// Its input buffer, fold control, thresholds and output are a2q_mvau's / a2q_vvau's own code, `include'd from
// a2q_fold_*.vh (one copy each; hw.rtl.generate.library_text pastes them in).
`default_nettype none
`include "a2q_iface.vh"

module a2q_mvau_packed #(
    `A2Q_FOLD_DIMS,
    /* verilator lint_off UNUSEDPARAM */
    parameter integer W_BITS = 4,            // same interface as a2q_mvau; the packed width AW replaces it
    /* verilator lint_on UNUSEDPARAM */
    `A2Q_THR_PARAMS(16, 16),
    parameter WEIGHT_FILE = "",             // "" (the default) leaves the memory uninitialised
    parameter THR_FILE = "",
    parameter integer LANES = 2,             // output channels per multiplier
    parameter integer AW = 15                // signed bits of a packed operand: (LANES-1)*ACC_BITS + W_BITS (+1)
) (
    `A2Q_STREAM_PORTS(IN_BITS, OUT_W)
);
`include "a2q_fold_params.vh"
    localparam integer GROUPS = (PE + LANES - 1) / LANES;
    localparam integer LW = LANES * ACC_BITS;            // one group's accumulator: LANES fields of ACC_BITS
    localparam integer XBW = IN_BITS + ((IN_SIGNED != 0) ? 0 : 1);  // the input as a signed multiplier operand
    localparam integer MW = (LW > XBW + AW) ? LW : XBW + AW;        // the product, at least LW bits
    localparam integer XW = SIMD * IN_BITS;              // one SIMD word of inputs
    localparam integer WW = GROUPS * SIMD * AW;          // one weight memory word: packed operands

    // ------------------------------------------------------------------ input side: pack SIMD words, 2 banks
`include "a2q_fold_inword.vh"
    wire             word_done = (wsi == SI_LAST);
    assign in_ready = !full[wbank];

`include "a2q_fold_pack.vh"
    `A2Q_FOLD_PACK(SIMD, XW)  // element s of the SIMD word ends up at bits s*IN_BITS

`include "a2q_fold_front.vh"

    // one packed product per group and SIMD element: its low LW bits are the LANES products side by side
    wire [GROUPS*SIMD*LW-1:0] prod_d;
    reg  [GROUPS*SIMD*LW-1:0] prod;
    reg              v2, first2, last2;
    reg  [NFW-1:0]   nf2;

    function automatic [LW-1:0] lane_bias(input integer unused);
        integer i;
        begin
            lane_bias = {LW{1'b0}};
            for (i = 0; i < LANES; i = i + 1) lane_bias[i*ACC_BITS + ACC_BITS - 1] = 1'b1;
        end
    endfunction
    localparam [LW-1:0] BIAS = lane_bias(0);

    genvar p, s, g;
    generate
        for (g = 0; g < GROUPS; g = g + 1) begin : g_mul_grp
            for (s = 0; s < SIMD; s = s + 1) begin : g_mul_simd
                wire [IN_BITS-1:0] x = xq[s*IN_BITS +: IN_BITS];
                wire x_msb = (IN_SIGNED != 0) ? x[IN_BITS-1] : 1'b0;
                wire signed [XBW-1:0] xs;
                if (XBW > IN_BITS) begin : g_xu
                    assign xs = {x_msb, x};
                end else begin : g_xs
                    assign xs = x;
                end
                wire signed [AW-1:0] ws = wq[(g*SIMD + s)*AW +: AW];
                /* verilator lint_off UNUSEDSIGNAL */
                wire signed [MW-1:0] pr = xs * ws;   // modulo 2^LW is all the lanes need
                /* verilator lint_on UNUSEDSIGNAL */
                assign prod_d[(g*SIMD + s)*LW +: LW] = pr[LW-1:0];
            end
        end
    endgenerate

`include "a2q_fold_stage2.vh"
    wire [PE*ACC_BITS-1:0] lanes;    // the extracted signed lanes, channel p at bits p*ACC_BITS
    /* verilator lint_off UNUSEDSIGNAL */
    reg  [TW-1:0]       tq;           // unused (constant) when N_THR = 0: the layer outputs raw accumulators
    /* verilator lint_on UNUSEDSIGNAL */
    assign adv = !(fin && pend_valid);

    generate
        for (g = 0; g < GROUPS; g = g + 1) begin : g_grp
            // SIMD packed products summed modulo 2^LW (heap-order tree as in a2q_mvau), then the biased accumulator
            wire [(2*SIMD-1)*LW-1:0] tree /* verilator split_var */;
            /* verilator lint_off UNUSEDSIGNAL */
            reg  [LW-1:0] acc;           // padding lanes of the last group are never read
            /* verilator lint_on UNUSEDSIGNAL */
            for (s = 0; s < SIMD; s = s + 1) begin : g_leaf
                assign tree[(SIMD-1+s)*LW +: LW] = prod[(g*SIMD + s)*LW +: LW];
            end
            for (s = 0; s < SIMD - 1; s = s + 1) begin : g_node
                assign tree[s*LW +: LW] = tree[(2*s+1)*LW +: LW] + tree[(2*s+2)*LW +: LW];
            end
            wire [LW-1:0] acc_in = first2 ? BIAS : acc;
            always @(posedge clk) begin
                if (adv && v2) acc <= acc_in + tree[LW-1:0];
            end
            for (s = 0; s < LANES; s = s + 1) begin : g_lane
                if (g*LANES + s < PE) begin : g_used
                    // field + 2^(ACC_BITS-1) -> the lane: invert the field's top bit
                    assign lanes[(g*LANES + s)*ACC_BITS +: ACC_BITS] =
                        {~acc[s*ACC_BITS + ACC_BITS - 1], acc[s*ACC_BITS +: ACC_BITS - 1]};
                end
            end
        end

        for (p = 0; p < PE; p = p + 1) begin : g_pe
            wire [ACC_BITS-1:0] acc = lanes[p*ACC_BITS +: ACC_BITS];
`include "a2q_fold_thr.vh"
        end
    endgenerate

`include "a2q_fold_back.vh"
endmodule

`default_nettype wire
