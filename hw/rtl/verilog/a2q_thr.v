// Element-wise layers of graph models, each an ACC_BITS accumulator per element followed by multi-thresholds:
//   a2q_thr      thresholds on a stream of accumulators (FINN's Thresholding): out = OUT_BASE + #{l : acc >= T[c, l]}
//   a2q_add      residual add of two streams: acc = (a << SA) + (b << SB) at ACC_BITS, then a2q_thr
//   a2q_requant  standalone requantization: acc = x at ACC_BITS, then a2q_thr
//   a2q_gap      global average pooling: acc[c] = the sum of channel c over the frame's N pixels, then a2q_thr
// Elements arrive in HWC order (channel fastest), so the channel of element i is i mod C. The accumulator is
// exactly ACC_BITS wide and wraps modulo 2^ACC_BITS, like the MVAU's (the plan proves the true sum fits).
// THR_FILE: word c holds T[c][l] at bits l*THR_BITS (two's complement). With N_THR = 0 (a last layer whose float
// affine runs off-chip) the raw accumulator is the output. The threshold count is the MAC units' own code
// (a2q_fold_thr.vh, as one lane; hw.rtl.generate.library_text pastes it in).
`default_nettype none
/* verilator lint_off DECLFILENAME */  // the three element-wise units live in this one file on purpose
`include "a2q_iface.vh"

module a2q_thr #(
    parameter integer C = 4,
    `A2Q_THR_PARAMS(8, 8),
    parameter THR_FILE = ""
) (
    `A2Q_STREAM_PORTS(ACC_BITS, OUT_W)
);
    localparam integer CAW = (C < 2) ? 1 : $clog2(C);
    /* verilator lint_off WIDTHTRUNC */  // sized constant: C - 1 fits CAW bits by construction
    localparam [CAW-1:0] C_LAST = C - 1;
    /* verilator lint_on WIDTHTRUNC */
    localparam integer TW = (N_THR > 0) ? N_THR * THR_BITS : 1;  // one channel's thresholds
    reg [CAW-1:0]   c;
    reg [OUT_W-1:0] odata;
    reg             ovalid;
    wire            in_fire = in_valid && in_ready;
    wire [OUT_W-1:0] res;
    wire [ACC_BITS-1:0] acc = in_data;
    assign in_ready = !ovalid || out_ready;
    assign out_data = odata;
    assign out_valid = ovalid;

    /* verilator lint_off UNUSEDSIGNAL */  // no thresholds (N_THR = 0): the raw accumulator is the output
    reg  [TW-1:0] tmem [0:(1 << CAW) - 1];
    wire [TW-1:0] tq = tmem[c];
    /* verilator lint_on UNUSEDSIGNAL */
    generate
        if (N_THR > 0 && THR_FILE != "") begin : g_tload
            initial $readmemh(THR_FILE, tmem);
        end
    endgenerate
    genvar p;
    generate
        for (p = 0; p < 1; p = p + 1) begin : g_pe  // one lane of the MAC units' threshold code
`include "a2q_fold_thr.vh"
        end
    endgenerate

    always @(posedge clk) begin
        if (in_fire) odata <= res;
    end
    always @(posedge clk) begin
        if (rst) begin
            c <= {CAW{1'b0}};
            ovalid <= 1'b0;
        end else begin
            if (in_fire) c <= (c == C_LAST) ? {CAW{1'b0}} : c + 1'b1;
            if (in_fire) ovalid <= 1'b1;
            else if (out_ready) ovalid <= 1'b0;
        end
    end
endmodule

// a2q_add and a2q_requant take C-channel element streams of IN_BITS integers (two's complement when IN_SIGNED)
`define A2Q_ELEM_IN \
    parameter integer C = 4, \
    parameter integer IN_BITS = 4, \
    parameter integer IN_SIGNED = 0
// and end in this a2q_thr on their accumulator stream (IN, VALID, READY); the unit's own output
// stream is a2q_thr's.
`define A2Q_THR_STAGE(IN, VALID, READY) \
    a2q_thr #(.C(C), .ACC_BITS(ACC_BITS), .N_THR(N_THR), .THR_BITS(THR_BITS), .OUT_BASE(OUT_BASE), .OUT_W(OUT_W), \
              .THR_FILE(THR_FILE)) u_thr ( \
        .clk(clk), .rst(rst), .in_data(IN), .in_valid(VALID), .in_ready(READY), \
        .out_data(out_data), .out_valid(out_valid), .out_ready(out_ready) \
    );

// a2q_add: joins two element streams of the same shape (an element is taken from both at once) and adds them.
module a2q_add #(
    `A2Q_ELEM_IN,
    parameter integer SA = 0,
    parameter integer SB = 0,
    `A2Q_THR_PARAMS(8, 8),
    parameter THR_FILE = ""
) (
    input  wire               clk,
    input  wire               rst,
    input  wire [IN_BITS-1:0] a_data,
    input  wire               a_valid,
    output wire               a_ready,
    input  wire [IN_BITS-1:0] b_data,
    input  wire               b_valid,
    output wire               b_ready,
    output wire [OUT_W-1:0]   out_data,
    output wire               out_valid,
    input  wire               out_ready
);
    // the sum at a width that holds both shifted terms, then wrapped to ACC_BITS
    localparam integer SM = (SA > SB) ? SA : SB;
    localparam integer EW = (ACC_BITS > IN_BITS + SM + 1) ? ACC_BITS : IN_BITS + SM + 1;
    wire sa = (IN_SIGNED != 0) ? a_data[IN_BITS-1] : 1'b0;
    wire sb = (IN_SIGNED != 0) ? b_data[IN_BITS-1] : 1'b0;
    wire [EW-1:0] ea = {{(EW-IN_BITS){sa}}, a_data};
    wire [EW-1:0] eb = {{(EW-IN_BITS){sb}}, b_data};
    /* verilator lint_off UNUSEDSIGNAL */
    (* keep *) wire [EW-1:0] sum = (ea << SA) + (eb << SB);  // bits above ACC_BITS dropped: modular sum
    /* verilator lint_on UNUSEDSIGNAL */
    wire t_ready;
    wire both = a_valid && b_valid;
    assign a_ready = b_valid && t_ready;
    assign b_ready = a_valid && t_ready;
    `A2Q_THR_STAGE(sum[ACC_BITS-1:0], both, t_ready)
endmodule

// a2q_requant: thresholds on the integer itself (K = 1, weight 1), sign- or zero-extended to ACC_BITS.
module a2q_requant #(
    `A2Q_ELEM_IN,
    `A2Q_THR_PARAMS(8, 8),
    parameter THR_FILE = ""
) (
    `A2Q_STREAM_PORTS(IN_BITS, OUT_W)
);
    localparam integer EW = (ACC_BITS > IN_BITS + 1) ? ACC_BITS : IN_BITS + 1;
    wire s = (IN_SIGNED != 0) ? in_data[IN_BITS-1] : 1'b0;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [EW-1:0] ext = {{(EW-IN_BITS){s}}, in_data};  // bits above ACC_BITS dropped (modular, forced widths)
    /* verilator lint_on UNUSEDSIGNAL */
    `A2Q_THR_STAGE(ext[ACC_BITS-1:0], in_valid, in_ready)
endmodule
// a2q_gap: global average pooling (the window is the whole H x W frame, unpadded: one output pixel), FINN's
// GlobalAccPool (finn-hlslib AccPool_Batch) in front of a2q_thr. Elements arrive one per beat in HWC order (channel
// fastest); channel c's running sum is word c of a C-word memory, exactly ACC_BITS wide and wrapping like the VVAU's
// accumulator (the plan proves the sum of N inputs fits). The frame's first pixel starts each sum afresh (no reset
// pass); on its last pixel element c completes sum c, which goes straight to the thresholds (one sum per beat,
// channel order) instead of back into the memory, so the next frame's pixels follow without a gap: one element per
// cycle, II = N * C cycles, no line buffer and no patch buffer (the window sum on a2q_swg -> a2q_vvau held the
// frame twice).
module a2q_gap #(
    `A2Q_ELEM_IN,
    parameter integer N = 4,                   // pixels per frame (H * W)
    `A2Q_THR_PARAMS(8, 8),
    parameter THR_FILE = ""
) (
    `A2Q_STREAM_PORTS(IN_BITS, OUT_W)
);
    localparam integer CAW = (C < 2) ? 1 : $clog2(C);
    localparam integer NW = (N < 2) ? 1 : $clog2(N);
    /* verilator lint_off WIDTHTRUNC */  // sized constants: C - 1 and N - 1 fit CAW / NW bits by construction
    localparam [CAW-1:0] C_LAST = C - 1;
    localparam [NW-1:0]  N_LAST = N - 1;
    /* verilator lint_on WIDTHTRUNC */
    localparam integer EW = (ACC_BITS > IN_BITS + 1) ? ACC_BITS : IN_BITS + 1;
    reg  [CAW-1:0]      c;             // channel of the element on the input
    reg  [NW-1:0]       pix;           // pixel of the frame
    reg  [ACC_BITS-1:0] sums [0:(1 << CAW) - 1];
    wire s = (IN_SIGNED != 0) ? in_data[IN_BITS-1] : 1'b0;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [EW-1:0] ext = {{(EW-IN_BITS){s}}, in_data};  // bits above ACC_BITS dropped (modular, forced widths)
    /* verilator lint_on UNUSEDSIGNAL */
    wire first = (pix == {NW{1'b0}});
    wire last = (pix == N_LAST);
    wire [ACC_BITS-1:0] sum = (first ? {ACC_BITS{1'b0}} : sums[c]) + ext[ACC_BITS-1:0];
    wire t_ready;
    wire in_fire = in_valid && in_ready;
    assign in_ready = !last || t_ready;   // only the last pixel's elements wait for the thresholds

    always @(posedge clk) begin
        if (in_fire && !last) sums[c] <= sum;
    end
    always @(posedge clk) begin
        if (rst) begin
            c <= {CAW{1'b0}};
            pix <= {NW{1'b0}};
        end else if (in_fire) begin
            c <= (c == C_LAST) ? {CAW{1'b0}} : c + 1'b1;
            if (c == C_LAST) pix <= last ? {NW{1'b0}} : pix + 1'b1;
        end
    end
    `A2Q_THR_STAGE(sum, in_valid && last, t_ready)
endmodule
`undef A2Q_THR_STAGE
`undef A2Q_ELEM_IN

`default_nettype wire
