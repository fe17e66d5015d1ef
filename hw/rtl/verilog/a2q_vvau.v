// a2q_vvau: vector-vector-activation unit, the MAC core of depthwise convolutions and average pooling (FINN's VVAU).
//
// Each output channel c is the dot product of its own input channel's KH x KW window with its own K = KH * KW
// weights. Input: the patches of a2q_swg, one element per beat in (kh, kw, c) order (k = kh*KW + kw outer, channel
// inner), one K x C patch per output pixel. Output: the C results of every patch, one per beat, channel order.
// Folding as in a2q_mvau: C = NF x PE channels computed PE at a time, K = SF x SIMD window elements per cycle; each
// PE lane multiplies its own channel's SIMD inputs (PE x SIMD inputs per cycle, where the MVAU shares SIMD) at full
// IN_BITS + W_BITS product width, and the adder tree and accumulator are exactly ACC_BITS wide (wrapping modulo
// 2^ACC_BITS). Average pooling is this unit with all-ones UINT1 weights (W_SIGNED = 0): the window sum is the
// accumulator, and the division and requantization are in its thresholds.
//
// Memories ($readmemh): WEIGHT_FILE word nf*SF + sf holds w[nf*PE + p][sf*SIMD + s] at bits (p*SIMD + s)*W_BITS
// (the MVAU's layout with K = KH * KW); THR_FILE word nf holds T[nf*PE + p][l] at bits (p*N_THR + l)*THR_BITS.
// The patch buffer is SIMD memories (one per s), each word PE elements of the channel group nf at window element
// sf*SIMD + s, double-buffered so the next patch streams in while this one is computed.
// Behind the patch buffer it is a2q_mvau's fold control, adder trees, thresholds and output, `include'd from
// a2q_fold_*.vh (one copy each; hw.rtl.generate.library_text pastes them in).
`default_nettype none
`include "a2q_iface.vh"

module a2q_vvau #(
    `A2Q_FOLD_DIMS,
    parameter integer W_BITS = 4,
    parameter integer W_SIGNED = 1,            // 0: unsigned weights (average pooling's all-ones UINT1)
    `A2Q_THR_PARAMS(16, 16),
    parameter WEIGHT_FILE = "",             // "" (the default) leaves the memory uninitialised
    parameter THR_FILE = ""
) (
    `A2Q_STREAM_PORTS(IN_BITS, OUT_W)
);
`include "a2q_fold_params.vh"
    localparam integer PW = IN_BITS + W_BITS;            // exact width of one product
    localparam integer WW = PE * SIMD * W_BITS;          // one weight memory word

    // ------------------------------------------------------------------ input side: PE-element words, SIMD memories, 2 banks
    localparam integer GW = PE * IN_BITS;              // one channel group's elements at one window position
    /* verilator lint_off WIDTHTRUNC */  // sized constant: SF fits WAW bits by construction
    localparam [WAW-1:0] SF_STEP = SF;
    /* verilator lint_on WIDTHTRUNC */
    reg  [1:0]       full;           // bank b holds a complete patch
    reg              wbank;
    reg  [PEW-1:0]   wp;             // channel within the group
    reg  [NFW-1:0]   wnf;            // channel group
    reg  [SIW-1:0]   ws;             // window element within the SIMD word
    reg  [SFW-1:0]   wsf;            // SIMD word
    reg  [WAW-1:0]   wa, wrow;       // buffer address nf*SF + sf, and sf (the address at nf = 0)
    /* verilator lint_off UNUSEDSIGNAL */
    reg  [GW-1:0]    wword;          // shift register: its oldest element is shifted out unused
    /* verilator lint_on UNUSEDSIGNAL */
    wire [GW-1:0]    word_next;
    wire             in_fire = in_valid && in_ready;
    wire             group_done = (wp == PE_LAST);
    wire             row_done = group_done && (wnf == NF_LAST);
    wire             set_full = in_fire && row_done && (ws == SI_LAST) && (wsf == SF_LAST);
    assign in_ready = !full[wbank];

`include "a2q_fold_pack.vh"
    `A2Q_FOLD_PACK(PE, GW)  // channel p of the group ends up at bits p*IN_BITS

    always @(posedge clk) begin
        if (rst) begin
            wbank <= 1'b0;
            wp <= {PEW{1'b0}}; wnf <= {NFW{1'b0}}; ws <= {SIW{1'b0}}; wsf <= {SFW{1'b0}};
            wa <= {WAW{1'b0}}; wrow <= {WAW{1'b0}};
        end else if (in_fire) begin
            wword <= word_next;
            if (!group_done) begin
                wp <= wp + 1'b1;
            end else begin
                wp <= {PEW{1'b0}};
                if (!row_done) begin
                    wnf <= wnf + 1'b1;
                    wa  <= wa + SF_STEP;
                end else begin
                    wnf <= {NFW{1'b0}};
                    if (ws != SI_LAST) begin
                        ws <= ws + 1'b1;
                        wa <= wrow;
                    end else begin
                        ws <= {SIW{1'b0}};
                        if (wsf != SF_LAST) begin
                            wsf  <= wsf + 1'b1;
                            wa   <= wrow + WA_ONE;
                            wrow <= wrow + WA_ONE;
                        end else begin
                            wsf   <= {SFW{1'b0}};
                            wa    <= {WAW{1'b0}};
                            wrow  <= {WAW{1'b0}};
                            wbank <= ~wbank;
                        end
                    end
                end
            end
        end
    end

`include "a2q_fold_issue.vh"

`include "a2q_fold_wrom.vh"
    reg              v1, first1, last1;
    reg  [NFW-1:0]   nf1;
    reg  [WW-1:0]    wq;
    wire [PE*SIMD*IN_BITS-1:0] xq;   // lane (p, s) at bits (p*SIMD + s)*IN_BITS

    genvar bs, bp;
    generate
        for (bs = 0; bs < SIMD; bs = bs + 1) begin : g_buf
            reg [GW-1:0] ibuf [0:(2 << WAW) - 1];     // address {bank, nf*SF + sf}
            reg [GW-1:0] rq;
            /* verilator lint_off WIDTHTRUNC */  // bs < SIMD fits SIW bits
            localparam [SIW-1:0] BS = bs;
            /* verilator lint_on WIDTHTRUNC */
            always @(posedge clk) begin
                if (in_fire && group_done && ws == BS) ibuf[{wbank, wa}] <= word_next;
                if (issue) rq <= ibuf[{rbank, iwa}];
            end
            for (bp = 0; bp < PE; bp = bp + 1) begin : g_lane
                assign xq[(bp*SIMD + bs)*IN_BITS +: IN_BITS] = rq[bp*IN_BITS +: IN_BITS];
            end
        end
    endgenerate

    always @(posedge clk) begin
        if (issue) begin
            wq <= wmem[iwa];
            first1 <= (isf == {SFW{1'b0}});
            last1  <= (isf == SF_LAST);
            nf1    <= inf;
        end
    end

`include "a2q_fold_walk.vh"

`include "a2q_fold_prod.vh"
    generate
        for (p = 0; p < PE; p = p + 1) begin : g_mul_pe
            for (s = 0; s < SIMD; s = s + 1) begin : g_mul_simd
                wire [IN_BITS-1:0] x = xq[(p*SIMD + s)*IN_BITS +: IN_BITS];
                wire [W_BITS-1:0]  w = wq[(p*SIMD + s)*W_BITS +: W_BITS];
                wire x_msb = (IN_SIGNED != 0) ? x[IN_BITS-1] : 1'b0;
                wire w_msb = (W_SIGNED != 0) ? w[W_BITS-1] : 1'b0;
                wire signed [PW-1:0] xs = {{W_BITS{x_msb}}, x};
                wire signed [PW-1:0] wx = {{IN_BITS{w_msb}}, w};
                (* keep *) wire signed [PW-1:0] pr = xs * wx;   // exact: |x * w| < 2^(PW-1)
                assign prod_d[(p*SIMD + s)*PW +: PW] = pr;
            end
        end
    endgenerate

`include "a2q_fold_stage2.vh"
    /* verilator lint_off UNUSEDSIGNAL */
    reg  [TW-1:0]       tq;           // unused (constant) when N_THR = 0: the layer outputs raw accumulators
    /* verilator lint_on UNUSEDSIGNAL */
    assign adv = !(fin && pend_valid);

    generate
        for (p = 0; p < PE; p = p + 1) begin : g_pe
`include "a2q_fold_lane.vh"
        end
    endgenerate

`include "a2q_fold_back.vh"
endmodule

`default_nettype wire
