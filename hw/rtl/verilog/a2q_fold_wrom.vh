// a2q_fold_wrom.vh: a piece of the folded MAC units' body, one copy for all of them: the bank flags' update and the
//   weight ROM wmem ($readmemh WEIGHT_FILE, word nf*SF + sf).
// Included by a2q_mvau, a2q_mvau_packed, a2q_vvau; hw.rtl.generate.library_text pastes it in place, so generated
//   files are self-contained.
// Uses the including unit's set_full and wbank (the write side), issue / issue_last / rbank, WW, WDEPTH, WEIGHT_FILE.
    always @(posedge clk) begin
        if (rst) begin
            full <= 2'b00;
        end else begin
            if (set_full) full[wbank] <= 1'b1;
            if (issue && issue_last) full[rbank] <= 1'b0;   // never the bank being filled (see in_ready)
        end
    end

    (* rom_style = "block" *) reg [WW-1:0] wmem [0:WDEPTH-1];
    generate
        if (WEIGHT_FILE != "") begin : g_wload
            initial $readmemh(WEIGHT_FILE, wmem);
        end
    endgenerate

