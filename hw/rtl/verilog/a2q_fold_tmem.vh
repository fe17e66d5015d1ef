// a2q_fold_tmem.vh: a piece of the folded MAC units' body, one copy for all of them: the threshold memory (word nf,
//   $readmemh THR_FILE) and its read into tq as a fold finishes.
// Included by a2q_mvau, and a2q_mvau_packed / a2q_vvau through a2q_fold_back.vh; hw.rtl.generate.library_text
//   pastes it in place, so generated files are self-contained.
// Uses the including unit's adv, v2, last2, nf2, tq, TW, TDEPTH, THR_FILE.
    generate
        if (N_THR > 0) begin : g_tmem
            // No rom_style here: a threshold word is PE x (2^n - 1) x THR_BITS wide (720 bits at PE 4, W4A4) and only
            // C/PE deep; forcing it into 16-bit-wide iCE40 block RAM took 55+ BRAMs, left to yosys it maps to logic.
            reg [TW-1:0] tmem [0:TDEPTH-1];
            if (THR_FILE != "") begin : g_tload
                initial $readmemh(THR_FILE, tmem);
            end
            always @(posedge clk) begin
                if (adv && v2 && last2) tq <= tmem[nf2];
            end
        end else begin : g_notmem
            /* verilator lint_off UNUSEDSIGNAL */
            wire [NFW-1:0] unused_nf = nf2;   // no thresholds: the fold index is not needed
            /* verilator lint_on UNUSEDSIGNAL */
            always @(posedge clk) tq <= 1'b0;
        end
    endgenerate
