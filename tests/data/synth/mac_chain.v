// Test fixture for tests/test_synth.py and tests/test_bitstream.py: a two-layer streaming MAC chain with the
// same port convention as the generated a2q_top (clk, rst, in_data/in_valid/in_ready, out_data/out_valid/
// out_ready). Each layer multiplies the input stream by a constant weight ROM and accumulates K products in an
// ACC_BITS register, then emits the accumulator. Small on purpose: it only exercises the tool runners.
`default_nettype none
module fx_mac #(parameter integer K = 8, parameter integer ACC_BITS = 12, parameter integer SEED = 1) (
    input wire clk, input wire rst,
    input wire [3:0] in_data, input wire in_valid, output wire in_ready,
    output wire [ACC_BITS-1:0] out_data, output reg out_valid, input wire out_ready);
  reg [2:0] k;
  reg signed [ACC_BITS-1:0] acc;
  wire signed [3:0] w = $signed({1'b0, k}) - SEED;  // k - SEED
  (* keep *) wire signed [8:0] prod = $signed({1'b0, in_data}) * w;
  assign in_ready = !out_valid;
  assign out_data = acc;
  always @(posedge clk) begin
    if (rst) begin k <= 0; acc <= 0; out_valid <= 0; end
    else begin
      if (out_valid && out_ready) begin out_valid <= 0; acc <= 0; end
      if (in_valid && in_ready) begin
        acc <= acc + prod;
        k <= k + 1'b1;
        if (k == K - 1) out_valid <= 1;
      end
    end
  end
endmodule

module a2q_top #(parameter integer ACC_BITS = 12) (
    input wire clk, input wire rst,
    input wire [3:0] in_data, input wire in_valid, output wire in_ready,
    output wire [ACC_BITS-1:0] out_data, output wire out_valid, input wire out_ready);
  wire [ACC_BITS-1:0] d0; wire v0, r0;
  fx_mac #(.K(8), .ACC_BITS(ACC_BITS), .SEED(1)) u_l0 (clk, rst, in_data, in_valid, in_ready, d0, v0, r0);
  fx_mac #(.K(8), .ACC_BITS(ACC_BITS), .SEED(3)) u_l1 (clk, rst, d0[3:0] ^ d0[ACC_BITS-1:ACC_BITS-4], v0, r0,
                                                      out_data, out_valid, out_ready);
endmodule
