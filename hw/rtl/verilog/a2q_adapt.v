// Width adapters between element streams (one element per beat, folded layers) and vector streams (one whole
// vector per beat, unrolled layers). Element 0 of a vector sits at the low bits.
`default_nettype none
/* verilator lint_off DECLFILENAME */  // both adapters live in this one file on purpose
`include "a2q_iface.vh"

// a2q_s2p: collects N elements into one vector; takes the next vector's first element while this one leaves.
module a2q_s2p #(
    parameter integer N = 4,
    parameter integer BITS = 4
) (
    `A2Q_STREAM_PORTS(BITS, N*BITS)
);
    localparam integer CW = (N < 2) ? 1 : $clog2(N);
    /* verilator lint_off WIDTHTRUNC */  // sized constant: N - 1 fits CW bits by construction
    localparam [CW-1:0] LAST = N - 1;
    /* verilator lint_on WIDTHTRUNC */
    reg [N*BITS-1:0] buffer;
    reg [CW-1:0] cnt;
    reg full;
    wire in_fire = in_valid && in_ready;
    assign in_ready = !full || out_ready;
    assign out_data = buffer;
    assign out_valid = full;
    generate
        if (N == 1) begin : g_one
            always @(posedge clk) if (in_fire) buffer <= in_data;
        end else begin : g_shift
            always @(posedge clk) if (in_fire) buffer <= {in_data, buffer[N*BITS-1:BITS]};
        end
    endgenerate
    always @(posedge clk) begin
        if (rst) begin
            cnt <= {CW{1'b0}};
            full <= 1'b0;
        end else begin
            if (full && out_ready) full <= 1'b0;
            if (in_fire) begin
                if (cnt == LAST) begin
                    cnt <= {CW{1'b0}};
                    full <= 1'b1;
                end else begin
                    cnt <= cnt + 1'b1;
                end
            end
        end
    end
endmodule

// a2q_p2s: sends an N-element vector one element per beat, lowest first.
module a2q_p2s #(
    parameter integer N = 4,
    parameter integer BITS = 4
) (
    `A2Q_STREAM_PORTS(N*BITS, BITS)
);
    localparam integer CW = (N < 2) ? 1 : $clog2(N);
    /* verilator lint_off WIDTHTRUNC */  // sized constant: N - 1 fits CW bits by construction
    localparam [CW-1:0] LAST = N - 1;
    /* verilator lint_on WIDTHTRUNC */
    reg [N*BITS-1:0] sh;
    reg [CW-1:0] cnt;
    reg busy;
    wire out_fire = busy && out_ready;
    assign in_ready = !busy || (out_ready && cnt == LAST);
    assign out_data = sh[BITS-1:0];
    assign out_valid = busy;
    always @(posedge clk) begin
        if (rst) begin
            busy <= 1'b0;
            cnt <= {CW{1'b0}};
        end else if (in_valid && in_ready) begin
            sh <= in_data;
            busy <= 1'b1;
            cnt <= {CW{1'b0}};
        end else if (out_fire) begin
            if (cnt == LAST) busy <= 1'b0;
            cnt <= cnt + 1'b1;
            if (N > 1) sh <= sh >> BITS;
        end
    end
endmodule

`default_nettype wire
