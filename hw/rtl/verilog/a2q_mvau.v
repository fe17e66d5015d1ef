// a2q_mvau: matrix-vector-activation unit, the MAC core of every dense / conv layer (FINN-style folding).
//
// Streams in K-element input vectors (IN_LANES = 1 element or SIMD elements per beat; a conv's sliding-window
// generator feeds one patch per output pixel) and streams out C results per vector in channel order (OUT_LANES = 1
// result or PE results per beat, channel 0 of the beat at the low bits). C = NF x PE output
// channels, K = SF x SIMD inputs: PE lanes each multiply SIMD inputs by SIMD weights per cycle at full
// IN_BITS + W_BITS product width, then an adder tree and the accumulator work at ACC_BITS and wrap modulo
// 2^ACC_BITS -- the narrow datapath accumulator-aware quantization makes safe. With N_THR > 0 each lane ends in
// N_THR multi-threshold comparators at THR_BITS: out = OUT_BASE + #{l : acc >= T[c, l]}; with N_THR = 0 (the
// last layer, whose float affine runs off-chip) it outputs the raw ACC_BITS accumulator.
//
// Memories, initialised by $readmemh from files the generator writes:
//   WEIGHT_FILE: word nf*SF + sf holds w[nf*PE + p][sf*SIMD + s] at bits (p*SIMD + s)*W_BITS (two's complement);
//   THR_FILE:    word nf holds T[nf*PE + p][l] at bits (p*N_THR + l)*THR_BITS.
// The input vector buffer is double-buffered, so the next vector streams in while this one is computed.
// Why the two beat widths: a dense layer of an MLP takes one element per beat (its published netlist is that one);
// a conv behind a2q_swg takes SIMD-wide beats and gives PE-wide ones, so at SF = NF = 1 it finishes a window per
// clock. With a wide side the finished fold also hands on to the output register in the cycle the previous one
// leaves (one fold per clock); with both sides one element wide that path is left out (a fold's PE results take
// PE beats anyway), so the one-element-per-beat unit synthesises to the same netlist as before.
// The fold control, threshold and tree code it shares with a2q_mvau_packed / a2q_vvau is `include'd from
// a2q_fold_*.vh (one copy each; hw.rtl.generate.library_text pastes them in, so BUILD/rtl/a2q_mvau.v is whole).
`default_nettype none
`include "a2q_iface.vh"

module a2q_mvau #(
    `A2Q_FOLD_DIMS,
    parameter integer W_BITS = 4,
    `A2Q_THR_PARAMS(16, 16),
    parameter integer IN_LANES = 1,          // input elements per beat: 1 or SIMD
    parameter integer OUT_LANES = 1,         // output results per beat: 1 or PE
    parameter WEIGHT_FILE = "",             // "" (the default) leaves the memory uninitialised
    parameter THR_FILE = ""
) (
    `A2Q_STREAM_PORTS(IN_LANES*IN_BITS, OUT_LANES*OUT_W)
);
`include "a2q_fold_params.vh"
    localparam integer PW = IN_BITS + W_BITS;            // exact width of one product
    localparam integer XW = SIMD * IN_BITS;              // one SIMD word of inputs
    localparam integer WW = PE * SIMD * W_BITS;          // one weight memory word
    localparam integer WIDE_IN = (IN_LANES > 1) ? 1 : 0;    // a whole SIMD word per beat
    localparam integer WIDE_OUT = (OUT_LANES > 1) ? 1 : 0;  // a whole fold's PE results per beat
    localparam integer OVERLAP = (WIDE_IN != 0 || WIDE_OUT != 0) ? 1 : 0;

    // ------------------------------------------------------------------ input side: pack SIMD words, 2 banks
`include "a2q_fold_inword.vh"
    wire             word_done;
    assign in_ready = !full[wbank];

    generate
        if (WIDE_IN != 0) begin : g_packw            // a whole SIMD word per beat
            assign word_next = in_data;
            assign word_done = 1'b1;
        end else if (SIMD == 1) begin : g_pack1
            assign word_next = in_data;
            assign word_done = (wsi == SI_LAST);
        end else begin : g_packn
            assign word_next = {in_data, wword[XW-1:IN_BITS]};  // element s ends up at bits s*IN_BITS
            assign word_done = (wsi == SI_LAST);
        end
    endgenerate

`include "a2q_fold_front.vh"

`include "a2q_fold_prod.vh"
    generate
        for (p = 0; p < PE; p = p + 1) begin : g_mul_pe
            for (s = 0; s < SIMD; s = s + 1) begin : g_mul_simd
                wire [IN_BITS-1:0] x = xq[s*IN_BITS +: IN_BITS];
                wire [W_BITS-1:0]  w = wq[(p*SIMD + s)*W_BITS +: W_BITS];
                wire x_msb = (IN_SIGNED != 0) ? x[IN_BITS-1] : 1'b0;
                wire signed [PW-1:0] xs = {{W_BITS{x_msb}}, x};
                wire signed [PW-1:0] ws = {{IN_BITS{w[W_BITS-1]}}, w};
                (* keep *) wire signed [PW-1:0] pr = xs * ws;   // exact: |x * w| < 2^(PW-1)
                assign prod_d[(p*SIMD + s)*PW +: PW] = pr;
            end
        end
    endgenerate

`include "a2q_fold_stage2.vh"
    wire                pend_go;      // the pending fold moves to the output register this cycle
    wire                pend_take;    // the finished fold moves to the pending register this cycle
    wire                pend_refill;  // pend_go and pend_take at once (only with a wide side)
    /* verilator lint_off UNUSEDSIGNAL */
    reg  [TW-1:0]       tq;           // unused (constant) when N_THR = 0: the layer outputs raw accumulators
    /* verilator lint_on UNUSEDSIGNAL */
    generate
        if (OVERLAP != 0) begin : g_adv_overlap
            assign pend_take = fin && (!pend_valid || pend_go);
            assign pend_refill = fin;
            assign adv = !fin || pend_take;
        end else begin : g_adv
            assign pend_take = fin && !pend_valid;
            assign pend_refill = 1'b0;
            assign adv = !(fin && pend_valid);
        end
    endgenerate

    generate
        for (p = 0; p < PE; p = p + 1) begin : g_pe
`include "a2q_fold_lane.vh"
        end
    endgenerate

`include "a2q_fold_tmem.vh"

    // ------------------------------------------------------------------ output: fold results -> one per beat
    reg [PE*OUT_W-1:0] ser;
    reg                ser_valid;
    reg [PEW-1:0]      ser_cnt;
    wire               out_fire = ser_valid && out_ready;
    wire               ser_last;      // this beat empties the output register
    wire               ser_free = !ser_valid || (out_fire && ser_last);
    generate
        if (WIDE_OUT != 0) begin : g_out_wide
            assign ser_last = 1'b1;
        end else begin : g_out_one
            assign ser_last = (ser_cnt == PE_LAST);
        end
    endgenerate
    assign pend_go = ser_free && pend_valid;
    assign out_data  = ser[OUT_LANES*OUT_W-1:0];
    assign out_valid = ser_valid;

    always @(posedge clk) begin
        if (rst) begin
            fin        <= 1'b0;
            pend_valid <= 1'b0;
            ser_valid  <= 1'b0;
            ser_cnt    <= {PEW{1'b0}};
        end else begin
            if (pend_take) begin
                pend       <= res;
                pend_valid <= 1'b1;
                fin        <= 1'b0;
            end
            if (adv && v2 && last2) fin <= 1'b1;
            if (pend_go) begin
                ser        <= pend;
                ser_valid  <= 1'b1;
                ser_cnt    <= {PEW{1'b0}};
                pend_valid <= pend_refill;   // 0, or 1 when the next fold takes its place in this cycle
            end else if (out_fire) begin
                ser     <= ser >> OUT_W;
                ser_cnt <= ser_cnt + 1'b1;
                if (ser_last) ser_valid <= 1'b0;
            end
        end
    end
endmodule

`default_nettype wire
