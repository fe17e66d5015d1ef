// a2q_pool: max over each window from a2q_swg (one whole window per beat, elements in (kh, kw, c) order).
//
// Emits the C maxima of every window in one beat (channel 0 at the low bits): a max tree per channel over the KK
// window positions, then an output register. Channel-parallel beats keep pace with the line buffer, which hands on
// a window per clock. Max pooling sits on integer activations (it commutes with the monotone thresholds), so it is
// exact.
`default_nettype none

module a2q_pool #(
    parameter integer C = 4,
    parameter integer KK = 4,          // window elements per channel, KH * KW
    parameter integer BITS = 4,
    parameter integer SIGNED = 0
) (
    input  wire                   clk,
    input  wire                   rst,
    input  wire [KK*C*BITS-1:0]   in_data,
    input  wire                   in_valid,
    output wire                   in_ready,
    output wire [C*BITS-1:0]      out_data,
    output wire                   out_valid,
    input  wire                   out_ready
);
    reg [C*BITS-1:0] odata;
    reg              ovalid;
    wire [C*BITS-1:0] maxima;
    assign in_ready = !ovalid || out_ready;
    assign out_data = odata;
    assign out_valid = ovalid;

    genvar c;
    generate
        for (c = 0; c < C; c = c + 1) begin : g_ch
            reg [BITS-1:0] m;
            integer j;
            always @* begin
                m = in_data[c*BITS +: BITS];
                for (j = 1; j < KK; j = j + 1) begin
                    if ((SIGNED != 0) ? ($signed(in_data[(j*C + c)*BITS +: BITS]) > $signed(m))
                                      : (in_data[(j*C + c)*BITS +: BITS] > m))
                        m = in_data[(j*C + c)*BITS +: BITS];
                end
            end
            assign maxima[c*BITS +: BITS] = m;
        end
    endgenerate

    always @(posedge clk) begin
        if (rst) begin
            ovalid <= 1'b0;
        end else if (in_ready) begin
            ovalid <= in_valid;
        end
    end
    always @(posedge clk) begin
        if (in_valid && in_ready) odata <= maxima;
    end
endmodule

`default_nettype wire
