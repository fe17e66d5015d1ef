// a2q_fold_thr.vh: a piece of the folded MAC units' body, one copy for all of them: lane p's result: OUT_BASE + #{l :
//   acc >= T[c, l]} (FINN multi-threshold), or the raw accumulator when N_THR = 0.
// Included by a2q_mvau_packed, and a2q_mvau / a2q_vvau through a2q_fold_lane.vh (inside the per-lane generate loop
//   g_pe, genvar p), and by a2q_thr (one lane, p = 0); hw.rtl.generate.library_text pastes it in place, so generated
//   files are self-contained.
// Uses the including unit's acc (lane p's accumulator), tq (the fold's thresholds), res.
            if (N_THR > 0) begin : g_thr
                localparam integer CW = $clog2(N_THR + 1);
                localparam [CW-1:0] ONE = 1;
                localparam [CW-1:0] ZERO = 0;
                /* verilator lint_off WIDTHTRUNC */  // OUT_BASE (e.g. -8) as OUT_W-bit two's complement
                localparam [OUT_W-1:0] BASE = OUT_BASE;
                /* verilator lint_on WIDTHTRUNC */
                wire signed [THR_BITS-1:0] acc_x;
                if (THR_BITS > ACC_BITS) begin : g_sx
                    assign acc_x = {{(THR_BITS-ACC_BITS){acc[ACC_BITS-1]}}, acc};
                end else begin : g_eq
                    assign acc_x = acc;
                end
                reg [CW-1:0] cnt;
                integer l;
                always @* begin
                    cnt = ZERO;
                    for (l = 0; l < N_THR; l = l + 1) begin
                        cnt = cnt + ((acc_x >= $signed(tq[(p*N_THR + l)*THR_BITS +: THR_BITS])) ? ONE : ZERO);
                    end
                end
                if (OUT_W > CW) begin : g_cx
                    assign res[p*OUT_W +: OUT_W] = BASE + {{(OUT_W-CW){1'b0}}, cnt};
                end else begin : g_ceq
                    assign res[p*OUT_W +: OUT_W] = BASE + cnt;
                end
            end else begin : g_acc
                assign res[p*OUT_W +: OUT_W] = acc;
            end
