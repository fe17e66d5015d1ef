// a2q_board_selftest: the board shell a2qflow puts around a generated a2q_top for an open-flow bitstream.
//
// A UP5K in an SG48 package has 39 IO pins; the accelerator's streams are wider than that and need a host. This
// shell instead makes the bitstream test itself: after a power-on reset it streams N_IN input beats from an
// on-chip ROM (VECTORS_FILE, one IN_WIDTH-bit word per line, written by hw/bitstream.py from the golden model's
// test vectors) into a2q_top, accepts every output beat, and folds the N_OUT output words into a 32-bit
// checksum (c = rotl(c, 5) ^ word, the word zero-extended / XOR-folded to 32 bits). It then compares the
// checksum with EXPECTED (computed by hw/bitstream.py from hw.reference.run at the planned widths) and drives:
//   pass  high when all outputs arrived and the checksum matches
//   fail  high when they arrived and it does not
//   done  high once all N_OUT outputs arrived
//   sig   the low two checksum bits (so the result logic can never be optimised away)
// The test repeats forever (reset between runs), so the accelerator is exercised continuously; pass / fail
// latch the last run's verdict. All outputs are active high. Every output word reaches the checksum, so yosys
// cannot remove any part of the datapath.
`default_nettype none

module a2q_board_selftest #(
    parameter integer IN_WIDTH = 4,
    parameter integer OUT_WIDTH = 16,
    parameter integer N_IN = 64,
    parameter integer N_OUT = 10,
    parameter [31:0] EXPECTED = 32'h0,
    parameter VECTORS_FILE = "selftest_inputs.mem"
) (
    input  wire       clk,
    output reg        pass,
    output reg        fail,
    output reg        done,
    output wire [1:0] sig
);
    localparam integer IAW = (N_IN < 2) ? 1 : $clog2(N_IN + 1);
    localparam integer OAW = (N_OUT < 2) ? 1 : $clog2(N_OUT + 1);
    localparam integer FOLDS = (OUT_WIDTH + 31) / 32;

    // power-on reset: iCE40 / ECP5 flip-flops start at their init value (0) after configuration
    reg [3:0] por = 4'd0;
    wire rst = ~&por;
    always @(posedge clk) if (rst) por <= por + 4'd1;

    reg [IN_WIDTH-1:0] rom [0:N_IN-1];
    initial $readmemh(VECTORS_FILE, rom);

    reg  [IAW-1:0] in_idx;
    reg  [OAW-1:0] out_cnt;
    reg  [31:0]    checksum;
    reg            run_rst;
    reg  [IN_WIDTH-1:0] in_word;
    wire in_valid = !run_rst && (in_idx < N_IN);
    wire in_ready;
    wire [OUT_WIDTH-1:0] out_data;
    wire out_valid;

    always @(posedge clk) in_word <= rom[in_valid && in_ready ? in_idx + 1'b1 : in_idx];

    a2q_top dut (
        .clk(clk), .rst(rst | run_rst),
        .in_data(in_word), .in_valid(in_valid), .in_ready(in_ready),
        .out_data(out_data), .out_valid(out_valid), .out_ready(1'b1)
    );

    // XOR-fold the output word to 32 bits
    reg [31:0] folded;
    integer i;
    always @(*) begin
        folded = 32'd0;
        for (i = 0; i < FOLDS * 32; i = i + 1)
            if (i < OUT_WIDTH) folded[i % 32] = folded[i % 32] ^ out_data[i];
    end

    always @(posedge clk) begin
        if (rst) begin
            in_idx <= 0; out_cnt <= 0; checksum <= 32'd0; run_rst <= 1'b1;
            pass <= 1'b0; fail <= 1'b0; done <= 1'b0;
        end else if (run_rst) begin
            run_rst <= 1'b0;  // one idle cycle between runs: the ROM read for index 0 lands in in_word
        end else begin
            if (in_valid && in_ready) in_idx <= in_idx + 1'b1;
            if (out_valid && out_cnt < N_OUT) begin
                checksum <= {checksum[26:0], checksum[31:27]} ^ folded;
                out_cnt <= out_cnt + 1'b1;
            end
            if (out_cnt == N_OUT) begin
                done <= 1'b1;
                pass <= (checksum == EXPECTED);
                fail <= (checksum != EXPECTED);
                in_idx <= 0; out_cnt <= 0; checksum <= 32'd0; run_rst <= 1'b1;
            end
        end
    end

    assign sig = checksum[1:0];
endmodule
