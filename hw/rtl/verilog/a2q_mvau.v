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
`default_nettype none

module a2q_mvau #(
    parameter integer K = 16,
    parameter integer C = 8,
    parameter integer SIMD = 4,
    parameter integer PE = 2,
    parameter integer IN_BITS = 4,
    parameter integer IN_SIGNED = 0,
    parameter integer W_BITS = 4,
    parameter integer ACC_BITS = 16,
    parameter integer N_THR = 15,
    parameter integer THR_BITS = 16,
    parameter integer OUT_BASE = 0,
    parameter integer OUT_W = 4,             // N_THR > 0 ? output activation bits : ACC_BITS
    parameter integer IN_LANES = 1,          // input elements per beat: 1 or SIMD
    parameter integer OUT_LANES = 1,         // output results per beat: 1 or PE
    parameter WEIGHT_FILE = "",             // "" (the default) leaves the memory uninitialised
    parameter THR_FILE = ""
) (
    input  wire               clk,
    input  wire               rst,
    input  wire [IN_LANES*IN_BITS-1:0] in_data,
    input  wire               in_valid,
    output wire               in_ready,
    output wire [OUT_LANES*OUT_W-1:0] out_data,
    output wire               out_valid,
    input  wire               out_ready
);
    localparam integer SF = K / SIMD;
    localparam integer NF = C / PE;
    localparam integer PW = IN_BITS + W_BITS;            // exact width of one product
    localparam integer XW = SIMD * IN_BITS;              // one SIMD word of inputs
    localparam integer WW = PE * SIMD * W_BITS;          // one weight memory word
    localparam integer SFW = (SF < 2) ? 1 : $clog2(SF);
    localparam integer NFW = (NF < 2) ? 1 : $clog2(NF);
    localparam integer SIW = (SIMD < 2) ? 1 : $clog2(SIMD);
    localparam integer PEW = (PE < 2) ? 1 : $clog2(PE);
    localparam integer WDEPTH = (NF * SF < 2) ? 2 : NF * SF;
    localparam integer WAW = $clog2(WDEPTH);
    localparam integer TDEPTH = (NF < 2) ? 2 : NF;
    localparam integer TW = (N_THR > 0) ? PE * N_THR * THR_BITS : 1;
    localparam integer WIDE_IN = (IN_LANES > 1) ? 1 : 0;    // a whole SIMD word per beat
    localparam integer WIDE_OUT = (OUT_LANES > 1) ? 1 : 0;  // a whole fold's PE results per beat
    localparam integer OVERLAP = (WIDE_IN != 0 || WIDE_OUT != 0) ? 1 : 0;
    /* verilator lint_off WIDTHTRUNC */  // sized constants: each value fits its width by construction
    localparam [SFW-1:0] SF_LAST = SF - 1;
    localparam [NFW-1:0] NF_LAST = NF - 1;
    localparam [SIW-1:0] SI_LAST = SIMD - 1;
    localparam [PEW-1:0] PE_LAST = PE - 1;
    localparam [WAW-1:0] WA_ONE = 1;
    /* verilator lint_on WIDTHTRUNC */

    // ------------------------------------------------------------------ input side: pack SIMD words, 2 banks
    reg  [1:0]       full;           // bank b holds a complete input vector
    reg              wbank;
    reg  [SFW-1:0]   wsf;
    reg  [SIW-1:0]   wsi;
    /* verilator lint_off UNUSEDSIGNAL */
    reg  [XW-1:0]    wword;          // shift register: its oldest element is shifted out unused
    /* verilator lint_on UNUSEDSIGNAL */
    wire [XW-1:0]    word_next;
    wire             in_fire = in_valid && in_ready;
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

    reg [XW-1:0] ibuf [0:(2 << SFW) - 1];                  // address {bank, sf}

    always @(posedge clk) begin
        if (in_fire && word_done) ibuf[{wbank, wsf}] <= word_next;
    end

    always @(posedge clk) begin
        if (rst) begin
            wbank <= 1'b0;
            wsf   <= {SFW{1'b0}};
            wsi   <= {SIW{1'b0}};
        end else if (in_fire) begin
            wword <= word_next;
            if (word_done) begin
                wsi <= {SIW{1'b0}};
                if (wsf == SF_LAST) begin
                    wsf   <= {SFW{1'b0}};
                    wbank <= ~wbank;
                end else begin
                    wsf <= wsf + 1'b1;
                end
            end else begin
                wsi <= wsi + 1'b1;
            end
        end
    end

    // ------------------------------------------------------------------ compute: issue -> read -> multiply -> tree/acc
    wire adv;                            // the pipeline advances (stalls only while a finished fold cannot leave)
    reg              rbank;
    reg  [SFW-1:0]   isf;
    reg  [NFW-1:0]   inf;
    reg  [WAW-1:0]   iwa;
    wire             issue = adv && full[rbank];
    wire             issue_last = (isf == SF_LAST) && (inf == NF_LAST);
    wire             set_full = in_fire && word_done && (wsf == SF_LAST);

    always @(posedge clk) begin
        if (rst) begin
            full <= 2'b00;
        end else begin
            if (set_full) full[wbank] <= 1'b1;
            if (issue && issue_last) full[rbank] <= 1'b0;   // never the bank being filled (see in_ready)
        end
    end

    (* rom_style = "block" *) reg [WW-1:0] wmem [0:WDEPTH-1];
    generate
        if (WEIGHT_FILE != "") begin : g_wload
            initial $readmemh(WEIGHT_FILE, wmem);
        end
    endgenerate

    reg              v1, first1, last1;
    reg  [NFW-1:0]   nf1;
    reg  [WW-1:0]    wq;
    reg  [XW-1:0]    xq;

    always @(posedge clk) begin
        if (issue) begin
            wq <= wmem[iwa];
            xq <= ibuf[{rbank, isf}];
            first1 <= (isf == {SFW{1'b0}});
            last1  <= (isf == SF_LAST);
            nf1    <= inf;
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            rbank <= 1'b0;
            isf   <= {SFW{1'b0}};
            inf   <= {NFW{1'b0}};
            iwa   <= {WAW{1'b0}};
            v1    <= 1'b0;
        end else if (adv) begin
            v1 <= full[rbank];
            if (full[rbank]) begin
                if (issue_last) begin
                    isf   <= {SFW{1'b0}};
                    inf   <= {NFW{1'b0}};
                    iwa   <= {WAW{1'b0}};
                    rbank <= ~rbank;
                end else begin
                    iwa <= iwa + WA_ONE;
                    if (isf == SF_LAST) begin
                        isf <= {SFW{1'b0}};
                        inf <= inf + 1'b1;
                    end else begin
                        isf <= isf + 1'b1;
                    end
                end
            end
        end
    end

    // products at full width (kept, so synthesis cannot fold them into one wide multiply-accumulate)
    wire [PE*SIMD*PW-1:0] prod_d;
    (* keep *) reg [PE*SIMD*PW-1:0] prod;
    reg              v2, first2, last2;
    reg  [NFW-1:0]   nf2;

    genvar p, s;
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

    always @(posedge clk) begin
        if (rst) begin
            v2 <= 1'b0;
        end else if (adv) begin
            v2 <= v1;
        end
    end
    always @(posedge clk) begin
        if (adv) begin
            prod   <= prod_d;
            first2 <= first1;
            last2  <= last1;
            nf2    <= nf1;
        end
    end

    // finished fold waiting for the output buffer
    reg                 fin;
    reg                 pend_valid;
    reg  [PE*OUT_W-1:0] pend;
    wire [PE*OUT_W-1:0] res;
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
            // adder tree over SIMD products at ACC_BITS: heap order, node i = node 2i+1 + node 2i+2,
            // leaves SIMD-1 .. 2*SIMD-2, root node 0 at the low bits
            (* keep *) wire [(2*SIMD-1)*ACC_BITS-1:0] tree /* verilator split_var */;
            reg [ACC_BITS-1:0] acc;
            for (s = 0; s < SIMD; s = s + 1) begin : g_leaf
                wire [PW-1:0] pr = prod[(p*SIMD + s)*PW +: PW];
                if (ACC_BITS > PW) begin : g_ext
                    assign tree[(SIMD-1+s)*ACC_BITS +: ACC_BITS] = {{(ACC_BITS-PW){pr[PW-1]}}, pr};
                end else if (ACC_BITS == PW) begin : g_same
                    assign tree[(SIMD-1+s)*ACC_BITS +: ACC_BITS] = pr;
                end else begin : g_wrap
                    // accumulator narrower than one product: keep the low bits (wrap mod 2^ACC_BITS)
                    /* verilator lint_off UNUSEDSIGNAL */
                    wire [PW-1:0] pr_full = pr;  // high bits intentionally dropped by the modular sum
                    /* verilator lint_on UNUSEDSIGNAL */
                    assign tree[(SIMD-1+s)*ACC_BITS +: ACC_BITS] = pr_full[ACC_BITS-1:0];
                end
            end
            for (s = 0; s < SIMD - 1; s = s + 1) begin : g_node
                assign tree[s*ACC_BITS +: ACC_BITS] = tree[(2*s+1)*ACC_BITS +: ACC_BITS]
                                                    + tree[(2*s+2)*ACC_BITS +: ACC_BITS];
            end
            always @(posedge clk) begin
                if (adv && v2) acc <= first2 ? tree[ACC_BITS-1:0] : acc + tree[ACC_BITS-1:0];
            end

            if (N_THR > 0) begin : g_thr
                localparam integer CW = $clog2(N_THR + 1);
                localparam [CW-1:0] ONE = 1;
                localparam [CW-1:0] ZERO = 0;
                /* verilator lint_off WIDTHTRUNC */  // OUT_BASE (e.g. -8) as OUT_W-bit two's complement
                localparam [OUT_W-1:0] BASE = OUT_BASE;
                /* verilator lint_on WIDTHTRUNC */
                wire signed [THR_BITS-1:0] acc_x;
                if (THR_BITS > ACC_BITS) begin : g_sx
                    assign acc_x = {{(THR_BITS-ACC_BITS){acc[ACC_BITS-1]}}, acc};
                end else begin : g_eq
                    assign acc_x = acc;
                end
                reg [CW-1:0] cnt;
                integer l;
                always @* begin
                    cnt = ZERO;
                    for (l = 0; l < N_THR; l = l + 1) begin
                        cnt = cnt + ((acc_x >= $signed(tq[(p*N_THR + l)*THR_BITS +: THR_BITS])) ? ONE : ZERO);
                    end
                end
                if (OUT_W > CW) begin : g_cx
                    assign res[p*OUT_W +: OUT_W] = BASE + {{(OUT_W-CW){1'b0}}, cnt};
                end else begin : g_ceq
                    assign res[p*OUT_W +: OUT_W] = BASE + cnt;
                end
            end else begin : g_acc
                assign res[p*OUT_W +: OUT_W] = acc;
            end
        end
    endgenerate

    generate
        if (N_THR > 0) begin : g_tmem
            // No rom_style here: a threshold word is PE x (2^n - 1) x THR_BITS wide (720 bits at PE 4, W4A4) and only
            // C/PE deep; forcing it into 16-bit-wide iCE40 block RAM took 55+ BRAMs, left to yosys it maps to logic.
            reg [TW-1:0] tmem [0:TDEPTH-1];
            if (THR_FILE != "") begin : g_tload
                initial $readmemh(THR_FILE, tmem);
            end
            always @(posedge clk) begin
                if (adv && v2 && last2) tq <= tmem[nf2];
            end
        end else begin : g_notmem
            /* verilator lint_off UNUSEDSIGNAL */
            wire [NFW-1:0] unused_nf = nf2;   // no thresholds: the fold index is not needed
            /* verilator lint_on UNUSEDSIGNAL */
            always @(posedge clk) tq <= 1'b0;
        end
    endgenerate

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
