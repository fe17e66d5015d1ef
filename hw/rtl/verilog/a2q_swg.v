// a2q_swg: sliding-window generator (im2col on a stream) for convolution and pooling.
//
// Takes a C x H x W frame streamed in HWC order (one element per beat, channel fastest), stores it in a
// two-bank frame buffer (the next frame streams in while this one is read out) and emits, for every output
// pixel (oy, ox) in row-major order, its KH x KW x C patch in (kh, kw, c) order, with zeros where the window
// covers the padding. General in C / H / W / KH / KW / stride / padding; reads are registered so the buffer can
// map to block RAM.
`default_nettype none

module a2q_swg #(
    parameter integer C = 1,
    parameter integer H = 8,
    parameter integer W = 8,
    parameter integer KH = 3,
    parameter integer KW = 3,
    parameter integer SH = 1,
    parameter integer SW = 1,
    parameter integer PT = 1,
    parameter integer PL = 1,
    parameter integer PB = 1,
    parameter integer PR = 1,
    parameter integer BITS = 4
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
    localparam integer OH = (H + PT + PB - KH) / SH + 1;
    localparam integer OW = (W + PL + PR - KW) / SW + 1;
    localparam integer FRAME = C * H * W;
    localparam integer FAW = (FRAME < 2) ? 1 : $clog2(FRAME);
    localparam integer CW = 16;                       // counters (frames up to 32767 per side)
    /* verilator lint_off WIDTHTRUNC */  // sized constants: each value fits its width by construction
    localparam [FAW-1:0] F_LAST = FRAME - 1;
    localparam [CW-1:0] OY_LAST = OH - 1;
    localparam [CW-1:0] OX_LAST = OW - 1;
    localparam [CW-1:0] KY_LAST = KH - 1;
    localparam [CW-1:0] KX_LAST = KW - 1;
    localparam [CW-1:0] C_LAST = C - 1;
    localparam [CW-1:0] ONE = 1;
    /* verilator lint_on WIDTHTRUNC */

    (* rom_style = "block" *) reg [BITS-1:0] mem [0:(2 << FAW) - 1];    // address {bank, pixel*C + c}

    // ------------------------------------------------------------------ fill
    reg  [1:0]     full;
    reg            wbank;
    reg  [FAW-1:0] wa;
    wire           in_fire = in_valid && in_ready;
    assign in_ready = !full[wbank];

    always @(posedge clk) begin
        if (in_fire) mem[{wbank, wa}] <= in_data;
    end
    always @(posedge clk) begin
        if (rst) begin
            wbank <= 1'b0;
            wa    <= {FAW{1'b0}};
        end else if (in_fire) begin
            if (wa == F_LAST) begin
                wa    <= {FAW{1'b0}};
                wbank <= ~wbank;
            end else begin
                wa <= wa + 1'b1;
            end
        end
    end

    // ------------------------------------------------------------------ emit
    reg            rbank;
    reg  [CW-1:0]  oy, ox, ky, kx, c;
    reg            ovalid;
    reg            padq;
    reg [BITS-1:0] rd;
    wire           can = !ovalid || out_ready;
    wire           emit = can && full[rbank];
    wire           last = (c == C_LAST) && (kx == KX_LAST) && (ky == KY_LAST) && (ox == OX_LAST) && (oy == OY_LAST);

    // input coordinates of the current patch element; outside the frame means padding (reads as 0)
    integer iy, ix, addr;
    reg pad;
    /* verilator lint_off UNUSEDSIGNAL */
    reg [31:0] addr_bits;  // only the low FAW bits address the frame; the rest are zero for in-frame pixels
    /* verilator lint_on UNUSEDSIGNAL */
    always @* begin
        iy = $signed({16'd0, oy}) * SH + $signed({16'd0, ky}) - PT;
        ix = $signed({16'd0, ox}) * SW + $signed({16'd0, kx}) - PL;
        pad = (iy < 0) || (iy >= H) || (ix < 0) || (ix >= W);
        addr = (iy * W + ix) * C + $signed({16'd0, c});
        addr_bits = addr;
    end

    always @(posedge clk) begin
        if (emit) begin
            rd   <= mem[{rbank, addr_bits[FAW-1:0]}];
            padq <= pad;
        end
    end
    assign out_data  = padq ? {BITS{1'b0}} : rd;
    assign out_valid = ovalid;

    always @(posedge clk) begin
        if (rst) begin
            full   <= 2'b00;
            rbank  <= 1'b0;
            ovalid <= 1'b0;
            oy <= {CW{1'b0}}; ox <= {CW{1'b0}}; ky <= {CW{1'b0}}; kx <= {CW{1'b0}}; c <= {CW{1'b0}};
        end else begin
            if (in_fire && wa == F_LAST) full[wbank] <= 1'b1;
            if (can) ovalid <= full[rbank];
            if (emit) begin
                if (last) begin
                    full[rbank] <= 1'b0;   // never the bank being filled (see in_ready)
                    rbank <= ~rbank;
                end
                if (c != C_LAST) c <= c + ONE;
                else begin
                    c <= {CW{1'b0}};
                    if (kx != KX_LAST) kx <= kx + ONE;
                    else begin
                        kx <= {CW{1'b0}};
                        if (ky != KY_LAST) ky <= ky + ONE;
                        else begin
                            ky <= {CW{1'b0}};
                            if (ox != OX_LAST) ox <= ox + ONE;
                            else begin
                                ox <= {CW{1'b0}};
                                if (oy != OY_LAST) oy <= oy + ONE;
                                else oy <= {CW{1'b0}};
                            end
                        end
                    end
                end
            end
        end
    end
endmodule

`default_nettype wire
