// Stream plumbing for graph models: a2q_dup copies one stream to N consumers (a fork), a2q_fifo buffers a skip
// branch so a join never deadlocks. Same role as FINN's DuplicateStreams and StreamingFIFO; written for
// a2qflow's valid/ready streams (a transfer happens where valid and ready are both high).
`default_nettype none
/* verilator lint_off DECLFILENAME */  // both stream modules live in this one file on purpose
`include "a2q_iface.vh"

// a2q_dup: registers each input element once and offers it to all N outputs; output i's copy is gone once it
// was taken there. The next element is accepted in the cycle the last pending copy leaves, so a fork runs at one
// element per clock when every consumer keeps up. Outputs are packed: output i at bits [i*BITS +: BITS].
module a2q_dup #(
    parameter integer N = 2,
    parameter integer BITS = 4
) (
    input  wire              clk,
    input  wire              rst,
    input  wire [BITS-1:0]   in_data,
    input  wire              in_valid,
    output wire              in_ready,
    output wire [N*BITS-1:0] out_data,
    output wire [N-1:0]      out_valid,
    input  wire [N-1:0]      out_ready
);
    reg [BITS-1:0] data;
    reg [N-1:0]    pending;              // copies not yet taken
    wire [N-1:0]   left = pending & ~out_ready;
    assign in_ready = (left == {N{1'b0}});
    assign out_valid = pending;
    assign out_data = {N{data}};
    always @(posedge clk) begin
        if (rst) begin
            pending <= {N{1'b0}};
        end else if (in_valid && in_ready) begin
            data    <= in_data;
            pending <= {N{1'b1}};
        end else begin
            pending <= left;
        end
    end
endmodule

// a2q_fifo: DEPTH-entry first-in first-out buffer with a registered output (DEPTH + 1 elements in flight).
// The memory is read synchronously, so synthesis can map a deep FIFO to block RAM.
module a2q_fifo #(
    parameter integer DEPTH = 16,
    parameter integer BITS = 4
) (
    `A2Q_STREAM_PORTS(BITS, BITS)
);
    localparam integer AW = (DEPTH < 2) ? 1 : $clog2(DEPTH);
    localparam integer CW = $clog2(DEPTH + 1);
    /* verilator lint_off WIDTHTRUNC */  // sized constants: each value fits its width by construction
    localparam [AW-1:0] A_LAST = DEPTH - 1;
    localparam [CW-1:0] FULL = DEPTH;
    localparam [CW-1:0] ONE = 1;
    /* verilator lint_on WIDTHTRUNC */
    reg [BITS-1:0] mem [0:DEPTH-1];
    reg [AW-1:0]   wa, ra;
    reg [CW-1:0]   count;
    reg [BITS-1:0] odata;
    reg            ovalid;
    wire in_fire = in_valid && in_ready;
    wire pop = (count != {CW{1'b0}}) && (!ovalid || out_ready);
    assign in_ready = (count != FULL);
    assign out_data = odata;
    assign out_valid = ovalid;
    always @(posedge clk) begin
        if (in_fire) mem[wa] <= in_data;
        if (pop) odata <= mem[ra];
    end
    always @(posedge clk) begin
        if (rst) begin
            wa <= {AW{1'b0}};
            ra <= {AW{1'b0}};
            count <= {CW{1'b0}};
            ovalid <= 1'b0;
        end else begin
            if (in_fire) wa <= (wa == A_LAST) ? {AW{1'b0}} : wa + 1'b1;
            if (pop) ra <= (ra == A_LAST) ? {AW{1'b0}} : ra + 1'b1;
            if (in_fire && !pop) count <= count + ONE;
            else if (pop && !in_fire) count <= count - ONE;
            if (pop) ovalid <= 1'b1;
            else if (out_ready) ovalid <= 1'b0;
        end
    end
endmodule

`default_nettype wire
