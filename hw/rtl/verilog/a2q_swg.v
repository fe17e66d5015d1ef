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
// rotation put the bank outputs back in (kh, kw) lane order, AND-ORs on one-hot selects registered with the read
// (constant wires when every window starts in the same bank and none covers padding, e.g. a pool whose stride is
// its kernel). The previous unit kept KH x KW whole copies of a (KH - 1 + SH)-row
// circular buffer, more bits than the two-bank frame buffer it replaced for 5x5 windows. FINN's
// ConvolutionInputGenerator (parallel-window mode) is the reference design. General in C / H / W / KH / KW / stride /
// padding.
//
// Why counters and registered bounds: need_lo / need_hi used to be computed each cycle from the output counters
// (oy x SH, y x W, clipping, a min), a chain of multipliers and adders in front of in_ready and the emit enable that
// set a placed CNN's clock (24 MHz on ECP5, 6 MULT18X18D for LeNet's conv1). The window origin, its row terms and
// its column terms are now kept in registers that step by the constants SH, SW and SH x W, one window row / one
// window ahead, and the bounds of the next window are registered when the current one is emitted: the same cycles
// and outputs as before, with a compare between registers in front of in_ready / emit and no multiplier.
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
    localparam integer OM = (OH > OW) ? OH : OW;
    localparam integer CW = $clog2(OM + 1);              // output counters: OW - 2 / OH - 2 = -1 (all ones) is
                                                         // out of their range when OW / OH = 1
    // no window covers padding in a dimension without any (y0 + KH - 1 <= (OH - 1) x SH + KH - 1 <= H - 1)
    localparam integer ROW_PAD = (PT > 0 || PB > 0) ? 1 : 0;
    localparam integer COL_PAD = (PL > 0 || PR > 0) ? 1 : 0;
    localparam integer KM = (KH > KW) ? KH : KW;         // one-hot bank selects: KM bits, the top ones 0 in the
                                                         // shorter dimension
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
    // control arithmetic: signed, wide enough for every pixel index plus CAP and for the padding's negative rows
    localparam integer NMAX = (H + PT + PB + KH + 2 * SH) * W + CAP + FRAME + 2 * (W + PL + PR + KW + 2 * SW);
    localparam integer NW = $clog2(NMAX + 1) + 2;
    localparam integer X1C0 = (KW - 1 - PL < W - 1) ? KW - 1 - PL : W - 1;   // the last column row start needs
    localparam integer NXC0 = (SW - PL > 0) ? SW - PL : 0;                   // a row's second window: first column
    localparam integer NX1C0 = (SW - PL + KW - 1 < W - 1) ? SW - PL + KW - 1 : W - 1;   // and last column
    /* verilator lint_off WIDTHTRUNC */  // sized constants: each value fits its width by construction
    localparam [NW-1:0] F_LAST = FRAME - 1;
    localparam [NW-1:0] N_ONE = 1;
    localparam [CW-1:0] OX_PENULT = OW - 2;
    localparam [CW-1:0] OY_PENULT = OH - 2;
    localparam [CW-1:0] ONE = 1;
    localparam [YB-1:0] Y_LAST = KH - 1, Y_ONE = 1;
    localparam [XB-1:0] X_LAST = KW - 1, X_ONE = 1;
    localparam [KM-1:0] OH_ONE = 1;
    localparam [KM-1:0] YOH_RESET = OH_ONE << Y_RESET, XOH_RESET = OH_ONE << X_RESET;
    // the column banks x0 + SW leaves behind (x0 mod KW >= KW - SW mod KW): the address carries
    localparam [KM-1:0] X_CARRY = ((OH_ONE << KW) - 1) & ~((OH_ONE << (KW - X_STEP)) - 1);
    localparam [XB-1:0] WX_LASTR = (W - 1) % KW;         // the writer's last column: bank and address
    localparam [BAW-1:0] WX_LASTQ = (W - 1) / KW;
    localparam [BAW-1:0] A_ONE = 1, QX_STEP = SW / KW, QX_RST = QX_RESET;
    localparam signed [NW-1:0] Y_TOP = -PT, YW_TOP = -PT * W, X_LEFT = -PL;
    localparam signed [NW-1:0] Y_SECOND = SH - PT, YW_SECOND = (SH - PT) * W;
    /* verilator lint_on WIDTHTRUNC */

    // The window bounds, without a multiplier or a long chain between the counters and in_ready / emit. For the
    // window at origin (Y0, x0) of a frame (row y0 = oy * SH - PT, column x0 = ox * SW - PL):
    //   need_lo = min(max(y0, 0) * W + max(x0, 0), max(y0 + SH, 0) * W (not on the last window row), FRAME)
    //   need_hi = min(y0 + KH - 1, H - 1) * W + min(x0 + KW - 1, W - 1)
    // The row terms change once per window row and the column terms once per window, so they are kept in registers
    // that move by constants: y0 += SH and y0 * W += SH * W per window row, x0 += SW per window; a row's terms are
    // computed one row ahead (the next row's registers) and a column's one window ahead (nxc / nx1c), so the bounds
    // of the window after this one are one adder and one compare from registers, and are registered when this one
    // is emitted: w_lc = need_lo + CAP and w_h = need_hi of the current window.
    // Row terms of the window row whose origin is y + dy (yw = y * W; dy a constant, so every compare is with a
    // constant and every sum one adder): lo = max(y, 0) * W + CAP, nx = min(max(y + SH, 0) * W, FRAME) + CAP (FRAME +
    // CAP on the last window row), hi = min(y + KH - 1, H - 1) * W.
    /* verilator lint_off WIDTHEXPAND */  // control arithmetic: NW-bit signed registers against 32-bit integer
    /* verilator lint_off WIDTHTRUNC */   // constants; every value fits NW bits by construction (NMAX)
    function automatic signed [NW-1:0] row_lo(input signed [NW-1:0] y, input signed [NW-1:0] yw, input integer dy);
        row_lo = (y < -dy) ? CAP : yw + (dy * W + CAP);
    endfunction
    function automatic signed [NW-1:0] row_nx(input signed [NW-1:0] y, input signed [NW-1:0] yw, input integer dy,
                                              input last);
        if (last || y >= H - SH - dy) row_nx = FRAME + CAP;
        else if (y < -SH - dy) row_nx = CAP;
        else row_nx = yw + ((dy + SH) * W + CAP);
    endfunction
    function automatic signed [NW-1:0] row_hi(input signed [NW-1:0] y, input signed [NW-1:0] yw, input integer dy);
        row_hi = (y > H - KH - dy) ? (H - 1) * W : yw + ((dy + KH - 1) * W);
    endfunction
    // bank numbers as one-hot vectors: adding a constant modulo N (N = KH rows or KW columns) rotates the bits
    function automatic [KM-1:0] rotl(input [KM-1:0] v, input integer k, input integer n);
        integer j;
        begin
            rotl = {KM{1'b0}};
            for (j = 0; j < n; j = j + 1) rotl[(j + k) % n] = v[j];
        end
    endfunction
    // the KM:1 rotation multiplexer on a one-hot (or all-zero: padding) select, an AND-OR with nothing in front
    function automatic [PX-1:0] pick(input [KM*PX-1:0] w, input [KM-1:0] s);
        integer i;
        begin
            pick = {PX{1'b0}};
            for (i = 0; i < KM; i = i + 1) pick = pick | (w[i * PX +: PX] & {PX{s[i]}});
        end
    endfunction

    // lead: frames the writer is ahead of the reader (-1: the reader waits for a frame the writer has not begun,
    // 0: same frame, 1: the writer fills the next frame while the last windows of this one are read)
    reg signed [2:0] lead;
    reg  signed [NW-1:0] wpos;           // next pixel of the writer's frame
    reg  [YB-1:0]  wyr;                  // writer: row bank (global row mod KH)
    reg  [XB-1:0]  wxr;                  // writer: column bank (column mod KW)
    reg  [BAW-1:0] wxq;                  // writer: bank address (column / KW)
    reg  [CW-1:0]  ox, noy;              // reader: output column; the next window row's index
    reg            ox_last, oy_last;     // the window is the last of its row / on the last window row
    reg  [KM-1:0]  yoh, xoh;             // reader: the window origin's row bank and column bank, one-hot
    reg  [BAW-1:0] qx;                   // reader: the origin's column address floor(x0 / KW), modulo 2^BAW
    reg  signed [NW-1:0] cy, cx;         // the window's origin row y0 and column x0 in the frame
    reg  signed [NW-1:0] c_lo, c_nx, c_hi;             // row terms of the current window row
    reg  signed [NW-1:0] ny, nyw, n_lo, n_nx, n_hi;    // the next window row: y0, y0 * W and its row terms
    reg            n_last;                             // the next window row is the frame's last
    reg  signed [NW-1:0] nxc, nx1c;      // the next window of this row: max(x0, 0), min(x0 + KW - 1, W - 1)
    reg  signed [NW-1:0] w_lc, w_h;      // this window: need_lo + CAP and need_hi
    reg  signed [NW-1:0] wposf;          // wpos + FRAME: the writer's pixel counted in the reader's frame

    // the next window's bounds (registered on emit): from this row's terms and nxc / nx1c, or at the end of a row
    // from the next row's terms and the first window's columns (max(-PL, 0) = 0, X1C0)
    wire signed [NW-1:0] s_lo = ox_last ? n_lo : c_lo + nxc;
    wire signed [NW-1:0] s_nx = ox_last ? n_nx : c_nx;
    wire                 s_lt = s_lo < s_nx;
    wire signed [NW-1:0] s_hi = ox_last ? n_hi + X1C0 : c_hi + nx1c;

    /* verilator lint_on WIDTHTRUNC */
    /* verilator lint_on WIDTHEXPAND */

    // ------------------------------------------------------------------ fill: one pixel per beat
    // pixel wpos may overwrite the pixel CAP earlier once no window needs it: wpos < need_lo + CAP (of the next
    // frame, while the last windows of this one are read: wpos + FRAME < need_lo + CAP)
    assign in_ready = (lead < 0) || (lead == 0 && wpos < w_lc) || (lead == 1 && wposf < w_lc && wpos != F_LAST);
    wire in_fire = in_valid && in_ready;
    wire wdone = in_fire && wpos == F_LAST;

    // ------------------------------------------------------------------ emit: one window per beat
    reg            ovalid;
    wire           win_ready = (lead > 0) || (lead == 0 && wpos > w_h);
    wire           can = !ovalid || out_ready;
    wire           emit = can && win_ready;
    wire           last = ox_last && oy_last;
    wire           rdone = emit && last;

    // bank (row bank b, column bank c) holds the pixels (Y, x) with Y mod KH = b and x mod KW = c, at address
    // x / KW: each pixel once. A window's KH rows and KW columns hit KH x KW distinct banks; each is read once per
    // window (one write and one read port per bank, the memory shape yosys maps to LUT RAM or block RAM).
    wire [KH*KW*PX-1:0] rd_all;          // registered bank outputs, bank (b, c) at (b * KW + c) * PX
    // the origin's banks; constants when every window starts in the same bank (e.g. a pool whose stride is its
    // kernel): then the selects below are the padding flags alone
    wire [KM-1:0] ycur = (Y_FIXED != 0) ? YOH_RESET : yoh;
    wire [KM-1:0] xcur = (X_FIXED != 0) ? XOH_RESET : xoh;
    genvar gb, gc;
    generate
        for (gc = 0; gc < KW; gc = gc + 1) begin : g_col
            // every row bank of column bank c reads column x0 + ((c - x0) mod KW): address qx, or qx + 1 when
            // c < x0 mod KW (a padding column's address may be out of range: its lanes are masked)
            localparam [KM-1:0] X_ABOVE = ((OH_ONE << KW) - 1) & ~((OH_ONE << (gc + 1)) - 1);   // banks > gc
            wire [BAW-1:0] raddr = qx + ((|(xcur & X_ABOVE)) ? A_ONE : {BAW{1'b0}});
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
    // row rotation, then a KW:1 column rotation. Each is an AND-OR of one-hot selects registered with the read: row
    // select rsel[kh] has bit b set when window row kh reads row bank b and is not padding, column select csel[kw]
    // bit c likewise (a window row or column is padding as a whole), so no adder, compare or mask sits between the
    // registers and the lanes. The selects are the origin's one-hot bank (yoh / xoh) rotated by kh / kw (wires).
    // The KM rotation candidates `cand` of one lane: element I (a genvar) is SRC for I < N and zero above (a one-hot
    // select of KM = max(KH, KW) bits serves both rotations). One text for the row and the column rotation, expanded
    // in place so both elaborate exactly as written out.
`define A2Q_SWG_CANDIDATES(I, N, SRC) \
                for (I = 0; I < KM; I = I + 1) begin : g_cand \
                    if (I < N) begin : g_bank \
                        assign cand[I * PX +: PX] = SRC; \
                    end else begin : g_none \
                        assign cand[I * PX +: PX] = {PX{1'b0}}; \
                    end \
                end
    wire [KH*KW*PX-1:0] rows;            // window row kh of every column bank c at (kh * KW + c) * PX
    reg  [KH*KM-1:0]    rsel;            // window row kh: row bank one-hot at kh * KM, 0 on a padding row
    reg  [KW*KM-1:0]    csel;            // window column kw: column bank one-hot at kw * KM, 0 on a padding column
    genvar ky, kx;
    generate
        for (ky = 0; ky < KH; ky = ky + 1) begin : g_wrow
            // window row ky is padding when y0 + ky < 0 or >= H
            /* verilator lint_off WIDTHTRUNC */  // sized constants
            localparam signed [NW-1:0] RP_LO = -ky, RP_HI = H - ky;
            /* verilator lint_on WIDTHTRUNC */
            always @(posedge clk) begin
                if (emit) rsel[ky * KM +: KM] <= (ROW_PAD != 0 && (cy < RP_LO || cy >= RP_HI)) ? {KM{1'b0}}
                                                                                     : rotl(ycur, ky, KH);
            end
            for (gc = 0; gc < KW; gc = gc + 1) begin : g_rot
                wire [KM*PX-1:0] cand;   // column bank gc of every row bank
                `A2Q_SWG_CANDIDATES(gb, KH, rd_all[(gb * KW + gc) * PX +: PX])
                assign rows[(ky * KW + gc) * PX +: PX] = pick(cand, rsel[ky * KM +: KM]);
            end
            for (kx = 0; kx < KW; kx = kx + 1) begin : g_wcol
                wire [KM*PX-1:0] cand;   // window row ky of every column bank
                `A2Q_SWG_CANDIDATES(gc, KW, rows[(ky * KW + gc) * PX +: PX])
                assign out_data[(ky * KW + kx) * PX +: PX] = pick(cand, csel[kx * KM +: KM]);
            end
        end
        for (kx = 0; kx < KW; kx = kx + 1) begin : g_cpad
            /* verilator lint_off WIDTHTRUNC */  // sized constants
            localparam signed [NW-1:0] CP_LO = -kx, CP_HI = W - kx;
            /* verilator lint_on WIDTHTRUNC */
            always @(posedge clk) begin
                if (emit) csel[kx * KM +: KM] <= (COL_PAD != 0 && (cx < CP_LO || cx >= CP_HI)) ? {KM{1'b0}}
                                                                                     : rotl(xcur, kx, KW);
            end
        end
    endgenerate
    assign out_valid = ovalid;

    /* verilator lint_off WIDTHEXPAND */  // control arithmetic: NW-bit signed registers against 32-bit integer
    /* verilator lint_off WIDTHTRUNC */   // constants; every value fits NW bits by construction (NMAX)
    always @(posedge clk) begin
        if (rst) begin
            lead   <= 3'sd0;
            wpos   <= {NW{1'b0}};
            wposf  <= FRAME;
            wyr <= {YB{1'b0}}; wxr <= {XB{1'b0}}; wxq <= {BAW{1'b0}};
            ovalid <= 1'b0;
            ox <= {CW{1'b0}}; noy <= (OH == 1) ? {CW{1'b0}} : ONE;
            ox_last <= (OW == 1); oy_last <= (OH == 1);
            yoh <= YOH_RESET; xoh <= XOH_RESET; qx <= QX_RST;
            // window (0, 0) and the row after it (the next frame's first when OH = 1)
            cy <= Y_TOP; cx <= X_LEFT;
            c_lo <= row_lo(Y_TOP, YW_TOP, 0);
            c_nx <= row_nx(Y_TOP, YW_TOP, 0, OH == 1);
            c_hi <= row_hi(Y_TOP, YW_TOP, 0);
            ny  <= (OH == 1) ? Y_TOP : Y_SECOND;
            nyw <= (OH == 1) ? YW_TOP : YW_SECOND;
            n_last <= (OH <= 2);
            n_lo <= (OH == 1) ? row_lo(Y_TOP, YW_TOP, 0) : row_lo(Y_SECOND, YW_SECOND, 0);
            n_nx <= (OH == 1) ? row_nx(Y_TOP, YW_TOP, 0, 1'b1) : row_nx(Y_SECOND, YW_SECOND, 0, OH == 2);
            n_hi <= (OH == 1) ? row_hi(Y_TOP, YW_TOP, 0) : row_hi(Y_SECOND, YW_SECOND, 0);
            nxc <= NXC0; nx1c <= NX1C0;
            w_lc <= (row_lo(Y_TOP, YW_TOP, 0) < row_nx(Y_TOP, YW_TOP, 0, OH == 1))
                    ? row_lo(Y_TOP, YW_TOP, 0) : row_nx(Y_TOP, YW_TOP, 0, OH == 1);
            w_h <= row_hi(Y_TOP, YW_TOP, 0) + X1C0;
        end else begin
            if (in_fire) begin
                wpos  <= wdone ? {NW{1'b0}} : wpos + N_ONE;
                wposf <= wdone ? FRAME : wposf + N_ONE;
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
                w_lc <= s_lt ? s_lo : s_nx;
                w_h <= s_hi;
                if (!ox_last) begin
                    ox <= ox + ONE;
                    ox_last <= (ox == OX_PENULT);
                    // x0 += SW, and the window after the next one's columns
                    cx <= cx + SW;
                    nxc <= (cx < -2 * SW) ? 0 : cx + 2 * SW;
                    nx1c <= (cx > W - KW - 2 * SW) ? W - 1 : cx + (2 * SW + KW - 1);
                    // x0 += SW: column bank + SW mod KW (a rotation) with a carry into the address, which moves
                    // SW / KW
                    xoh <= rotl(xoh, X_STEP, KW);
                    qx <= qx + QX_STEP + ((|(xoh & X_CARRY)) ? A_ONE : {BAW{1'b0}});
                end else begin
                    ox <= {CW{1'b0}}; ox_last <= (OW == 1);
                    cx <= X_LEFT; nxc <= NXC0; nx1c <= NX1C0;
                    xoh <= XOH_RESET; qx <= QX_RST;
                    // on to the next window row (its terms were computed a row ahead), and the row after it: SH
                    // rows further, or the next frame's first window row
                    oy_last <= n_last;
                    cy <= ny; c_lo <= n_lo; c_nx <= n_nx; c_hi <= n_hi;
                    if (n_last) begin
                        noy <= {CW{1'b0}};
                        ny <= Y_TOP; nyw <= YW_TOP; n_last <= (OH == 1);
                        n_lo <= row_lo(Y_TOP, YW_TOP, 0);
                        n_nx <= row_nx(Y_TOP, YW_TOP, 0, OH == 1);
                        n_hi <= row_hi(Y_TOP, YW_TOP, 0);
                    end else begin
                        noy <= noy + ONE;
                        ny <= ny + SH; nyw <= nyw + SH * W; n_last <= (noy == OY_PENULT);
                        n_lo <= row_lo(ny, nyw, SH);
                        n_nx <= row_nx(ny, nyw, SH, noy == OY_PENULT);
                        n_hi <= row_hi(ny, nyw, SH);
                    end
                    // Y0 moves SH rows, or on to the next frame's first window row
                    yoh <= oy_last ? rotl(yoh, Y_FRAME, KH) : rotl(yoh, Y_STEP, KH);
                end
            end
        end
    end
    /* verilator lint_on WIDTHTRUNC */
    /* verilator lint_on WIDTHEXPAND */
endmodule
`undef A2Q_SWG_CANDIDATES

`default_nettype wire
