// a2q_swg: sliding-window generator (im2col on a stream) for convolution and pooling, on a line buffer that stores
// each pixel once, one pixel in and one whole window out per beat.
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
// Why KH rows: frames follow each other as one column of rows (global row Y = frame x H + y), and pixel (Y, x)
// overwrites pixel (Y - KH, x), i.e. the pixel KH x W places earlier in the stream (CAP). Pixel i of the frame may be
// written once every window that needs the pixel it overwrites is done, i.e. while i < need_lo + CAP, where need_lo
// is the first pixel the current or a later window needs; a window is emitted once its last pixel (need_hi) has
// arrived. A window spans at most SPAN = (KH - 1) x W + KW <= CAP pixels, so the current window always fits and the
// unit cannot deadlock; the writer fills row Y0 + KH behind the reader's columns on row Y0, and the next frame
// streams in while the last windows of this one are read (the writer runs up to one frame ahead), which is what lets
// a padded ("same") convolution keep one pixel per beat.
//
// Why banks: reading a window per beat takes KH x KW pixel reads per clock. Bank (b, c) holds the pixels (Y, x) with
// Y mod KH = b and x mod KW = c, at address x / KW, so any KH consecutive rows and KW consecutive columns (strides
// and padding included) hit KH x KW distinct banks, each read once per window: KH x KW one-write / one-read-port
// memories of ceil(W / KW) pixels that yosys maps to LUT RAM (or registers when tiny), KH x KW x ceil(W / KW) x C x
// BITS bits in all, about KH rows of the frame, each pixel stored once. A KH:1 row rotation and a KW:1 column
// rotation put the bank outputs back in (kh, kw) lane order (constant wires when every window starts in the same
// bank, e.g. a pool whose stride is its kernel). The previous unit kept KH x KW whole copies of a (KH - 1 + SH)-row
// circular buffer, more bits than the two-bank frame buffer it replaced for 5x5 windows. FINN's
// ConvolutionInputGenerator (parallel-window mode) is the reference design. General in C / H / W / KH / KW / stride /
// padding.
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
    localparam integer CAP = KH * W;                     // pixels held: KH rows (a pixel overwrites the one KH rows up)
    localparam integer WB = (W + KW - 1) / KW;           // bank depth: the columns x with x mod KW = c
    localparam integer BAW = (WB < 2) ? 1 : $clog2(WB);  // bank address; column arithmetic wraps at 2^BAW
    localparam integer YB = (KH < 2) ? 1 : $clog2(KH) + 1;   // row-bank numbers, one spare bit for the carry
    localparam integer XB = (KW < 2) ? 1 : $clog2(KW) + 1;   // column-bank numbers, likewise
    localparam integer CW = 16;                          // counters (frames up to 32767 per side)
    // window origin (global row Y0, column x0) in bank coordinates: row bank Y0 mod KH, column bank x0 mod KW and
    // column address floor(x0 / KW); x0 starts every row at -PL, Y0 moves SH rows per window row and, from the
    // last window row of a frame to the first of the next, H - (OH - 1) * SH rows (frames follow each other in Y)
    localparam integer Y_STEP = SH % KH;
    localparam integer Y_FRAME = ((H - (OH - 1) * SH) % KH + KH) % KH;
    localparam integer Y_RESET = ((KH - PT % KH) % KH);
    localparam integer X_STEP = SW % KW;                 // column bank step; the address moves SW / KW (+ carry)
    localparam integer X_RESET = ((KW - PL % KW) % KW);
    localparam integer QX_RESET = (PL % KW == 0) ? -(PL / KW) : -(PL / KW) - 1;
    // the rotations are constants when every window starts in the same bank (e.g. a 2x2 stride-2 pool, a global
    // pool): then the KH:1 / KW:1 lane multiplexers are wires
    localparam integer Y_FIXED = ((OH == 1 || Y_STEP == 0) && Y_FRAME == 0) ? 1 : 0;
    localparam integer X_FIXED = (OW == 1 || X_STEP == 0) ? 1 : 0;
    /* verilator lint_off WIDTHTRUNC */  // sized constants: each value fits its width by construction
    localparam [31:0] F_LAST = FRAME - 1;
    localparam [CW-1:0] OY_LAST = OH - 1;
    localparam [CW-1:0] OX_LAST = OW - 1;
    localparam [CW-1:0] ONE = 1;
    localparam [YB-1:0] Y_LAST = KH - 1, Y_ONE = 1, YR_STEP = Y_STEP, YR_FRAME = Y_FRAME, YR_RESET = Y_RESET;
    localparam [XB-1:0] X_LAST = KW - 1, X_ONE = 1, XR_STEP = X_STEP, XR_RESET = X_RESET;
    localparam [XB-1:0] WX_LASTR = (W - 1) % KW;         // the writer's last column: bank and address
    localparam [BAW-1:0] WX_LASTQ = (W - 1) / KW;
    localparam [BAW-1:0] A_ONE = 1, QX_STEP = SW / KW, QX_RST = QX_RESET;
    /* verilator lint_on WIDTHTRUNC */

    // lead: frames the writer is ahead of the reader (-1: the reader waits for a frame the writer has not begun,
    // 0: same frame, 1: the writer fills the next frame while the last windows of this one are read)
    reg signed [2:0] lead;
    reg  [31:0]    wpos;                 // next pixel of the writer's frame
    reg  [YB-1:0]  wyr;                  // writer: row bank (global row mod KH)
    reg  [XB-1:0]  wxr;                  // writer: column bank (column mod KW)
    reg  [BAW-1:0] wxq;                  // writer: bank address (column / KW)
    reg  [CW-1:0]  oy, ox;
    reg  [YB-1:0]  yr, yrq;              // reader: the window origin's row bank (yrq: of the window being read)
    reg  [XB-1:0]  xr, xrq;              // reader: the origin's column bank
    reg  [BAW-1:0] qx;                   // reader: the origin's column address floor(x0 / KW), modulo 2^BAW

    // the first pixel this or a later window needs (with top / left padding clipped, the next row's first window
    // can start before this one; the next frame's first window needs its pixel 0, index FRAME) and the last pixel
    // this window needs
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
        if (need_lo > FRAME) need_lo = FRAME;  // windows below the frame (all padding): the next frame needs pixel 0
        need_hi = y1 * W + x1;
    end

    // ------------------------------------------------------------------ fill: one pixel per beat
    wire wp_ok = $signed(wpos) < need_lo + CAP;
    wire wp_ok_next = $signed(wpos) + FRAME < need_lo + CAP;
    assign in_ready = (lead < 0) || (lead == 0 && wp_ok) || (lead == 1 && wp_ok_next && wpos != F_LAST);
    wire in_fire = in_valid && in_ready;
    wire wdone = in_fire && wpos == F_LAST;

    // ------------------------------------------------------------------ emit: one window per beat
    reg            ovalid;
    wire           win_ready = (lead > 0) || (lead == 0 && $signed(wpos) > need_hi);
    wire           can = !ovalid || out_ready;
    wire           emit = can && win_ready;
    wire           last = (ox == OX_LAST) && (oy == OY_LAST);
    wire           rdone = emit && last;

    // bank (row bank b, column bank c) holds the pixels (Y, x) with Y mod KH = b and x mod KW = c, at address
    // x / KW: each pixel once. A window's KH rows and KW columns hit KH x KW distinct banks; each is read once per
    // window (one write and one read port per bank, the memory shape yosys maps to LUT RAM or block RAM).
    wire [KH*KW*PX-1:0] rd_all;          // registered bank outputs, bank (b, c) at (b * KW + c) * PX
    genvar gb, gc;
    generate
        for (gc = 0; gc < KW; gc = gc + 1) begin : g_col
            // every row bank of column bank c reads column x0 + ((c - x0) mod KW): address qx, or qx + 1 when
            // c < x0 mod KW (a padding column's address may be out of range: its lanes are masked)
            wire [BAW-1:0] raddr = qx + ((gc < xr) ? A_ONE : {BAW{1'b0}});
            for (gb = 0; gb < KH; gb = gb + 1) begin : g_row
                reg [PX-1:0] bank [0:WB-1];
                reg [PX-1:0] rd;
                always @(posedge clk) begin
                    if (in_fire && wyr == gb && wxr == gc) bank[wxq] <= in_data;
                end
                always @(posedge clk) begin
                    if (emit) rd <= bank[raddr];
                end
                assign rd_all[(gb * KW + gc) * PX +: PX] = rd;
            end
        end
    endgenerate

    // lanes: window element (kh, kw) is bank ((Y0 + kh) mod KH, (x0 + kw) mod KW), zero where it is padding; a KH:1
    // row rotation, then a KW:1 column rotation (each a multiplexer of constant selects). A window row or column is
    // padding as a whole, so the mask is KH row flags and KW column flags, registered with the read.
    wire [KH*KW*PX-1:0] rows;            // window row kh of every column bank c at (kh * KW + c) * PX
    reg  [KH-1:0]       rpad;
    reg  [KW-1:0]       cpad;
    genvar ky, kx;
    generate
        for (ky = 0; ky < KH; ky = ky + 1) begin : g_wrow
            integer iy;
            always @* iy = $signed({16'd0, oy}) * SH + ky - PT;
            always @(posedge clk) begin
                if (emit) rpad[ky] <= (iy < 0) || (iy >= H);
            end
            for (gc = 0; gc < KW; gc = gc + 1) begin : g_rot
                integer sb, b;
                reg [PX-1:0] v;
                always @* begin
                    sb = (Y_FIXED != 0) ? Y_RESET + ky : $signed({{(32-YB){1'b0}}, yrq}) + ky;
                    if (sb >= KH) sb = sb - KH;
                    v = rd_all[(ky * KW + gc) * PX +: PX];
                    for (b = 0; b < KH; b = b + 1)
                        if (sb == b) v = rd_all[(b * KW + gc) * PX +: PX];
                end
                assign rows[(ky * KW + gc) * PX +: PX] = v;
            end
            for (kx = 0; kx < KW; kx = kx + 1) begin : g_wcol
                integer sc, c;
                reg [PX-1:0] v;
                always @* begin
                    sc = (X_FIXED != 0) ? X_RESET + kx : $signed({{(32-XB){1'b0}}, xrq}) + kx;
                    if (sc >= KW) sc = sc - KW;
                    v = rows[(ky * KW + kx) * PX +: PX];
                    for (c = 0; c < KW; c = c + 1)
                        if (sc == c) v = rows[(ky * KW + c) * PX +: PX];
                end
                assign out_data[(ky * KW + kx) * PX +: PX] = (rpad[ky] || cpad[kx]) ? {PX{1'b0}} : v;
            end
        end
        for (kx = 0; kx < KW; kx = kx + 1) begin : g_cpad
            integer ix;
            always @* ix = $signed({16'd0, ox}) * SW + kx - PL;
            always @(posedge clk) begin
                if (emit) cpad[kx] <= (ix < 0) || (ix >= W);
            end
        end
    endgenerate
    assign out_valid = ovalid;

    always @(posedge clk) begin
        if (rst) begin
            lead   <= 3'sd0;
            wpos   <= 32'd0;
            wyr <= {YB{1'b0}}; wxr <= {XB{1'b0}}; wxq <= {BAW{1'b0}};
            ovalid <= 1'b0;
            oy <= {CW{1'b0}}; ox <= {CW{1'b0}};
            yr <= YR_RESET; xr <= XR_RESET; qx <= QX_RST;
            yrq <= YR_RESET; xrq <= XR_RESET;
        end else begin
            if (in_fire) begin
                wpos <= wdone ? 32'd0 : wpos + 32'd1;
                if (wxr == WX_LASTR && wxq == WX_LASTQ) begin  // end of a row: the next row's bank
                    wxr <= {XB{1'b0}}; wxq <= {BAW{1'b0}};
                    wyr <= (wyr != Y_LAST) ? wyr + Y_ONE : {YB{1'b0}};
                end else if (wxr != X_LAST) begin
                    wxr <= wxr + X_ONE;
                end else begin
                    wxr <= {XB{1'b0}};
                    wxq <= wxq + A_ONE;
                end
            end
            if (wdone && !rdone) lead <= lead + 3'sd1;
            else if (rdone && !wdone) lead <= lead - 3'sd1;
            if (can) ovalid <= win_ready;
            if (emit) begin
                yrq <= yr; xrq <= xr;
                if (ox != OX_LAST) begin
                    ox <= ox + ONE;
                    // x0 += SW: column bank + SW mod KW with a carry into the address, which moves SW / KW
                    if (xr + XR_STEP > X_LAST) begin
                        xr <= xr + XR_STEP - X_LAST - X_ONE;
                        qx <= qx + QX_STEP + A_ONE;
                    end else begin
                        xr <= xr + XR_STEP;
                        qx <= qx + QX_STEP;
                    end
                end else begin
                    ox <= {CW{1'b0}};
                    xr <= XR_RESET; qx <= QX_RST;
                    oy <= (oy != OY_LAST) ? oy + ONE : {CW{1'b0}};
                    // Y0 moves SH rows, or on to the next frame's first window row
                    if (yr + ((oy != OY_LAST) ? YR_STEP : YR_FRAME) > Y_LAST)
                        yr <= yr + ((oy != OY_LAST) ? YR_STEP : YR_FRAME) - Y_LAST - Y_ONE;
                    else
                        yr <= yr + ((oy != OY_LAST) ? YR_STEP : YR_FRAME);
                end
            end
        end
    end
endmodule

`default_nettype wire
