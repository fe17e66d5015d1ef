// a2q_pool: max over each window of a patch stream from a2q_swg (patches in (kh, kw, c) order).
//
// Keeps a running maximum per channel and emits the C maxima of every patch, one per beat. Max pooling sits on
// integer activations (it commutes with the monotone thresholds), so it is exact.
`default_nettype none

module a2q_pool #(
    parameter integer C = 4,
    parameter integer KK = 4,          // window elements per channel, KH * KW
    parameter integer BITS = 4,
    parameter integer SIGNED = 0
) (
    input  wire            clk,
    input  wire            rst,
    input  wire [BITS-1:0] in_data,
    input  wire            in_valid,
    output wire            in_ready,
    output wire [BITS-1:0] out_data,
    output wire            out_valid,
    input  wire            out_ready
);
    localparam integer CAW = (C < 2) ? 1 : $clog2(C);
    localparam integer JW = (KK < 2) ? 1 : $clog2(KK);
    /* verilator lint_off WIDTHTRUNC */  // sized constants: each value fits its width by construction
    localparam [CAW-1:0] C_LAST = C - 1;
    localparam [JW-1:0] J_LAST = KK - 1;
    /* verilator lint_on WIDTHTRUNC */

    reg [BITS-1:0] m [0:(1 << CAW) - 1];
    reg [CAW-1:0]  c;
    reg [JW-1:0]   j;
    reg [BITS-1:0] odata;
    reg            ovalid;

    wire           is_first = (j == {JW{1'b0}});
    wire           is_last = (j == J_LAST);
    wire [BITS-1:0] prev = m[c];
    wire           greater = (SIGNED != 0) ? ($signed(in_data) > $signed(prev)) : (in_data > prev);
    wire [BITS-1:0] cur = (is_first || greater) ? in_data : prev;
    assign in_ready = !is_last || !ovalid || out_ready;
    wire           in_fire = in_valid && in_ready;
    assign out_data = odata;
    assign out_valid = ovalid;

    always @(posedge clk) begin
        if (in_fire && !is_last) m[c] <= cur;
    end

    always @(posedge clk) begin
        if (rst) begin
            c <= {CAW{1'b0}};
            j <= {JW{1'b0}};
            ovalid <= 1'b0;
        end else begin
            if (in_fire && is_last) begin
                odata  <= cur;
                ovalid <= 1'b1;
            end else if (out_ready) begin
                ovalid <= 1'b0;
            end
            if (in_fire) begin
                if (c == C_LAST) begin
                    c <= {CAW{1'b0}};
                    j <= is_last ? {JW{1'b0}} : j + 1'b1;
                end else begin
                    c <= c + 1'b1;
                end
            end
        end
    end
endmodule

`default_nettype wire
