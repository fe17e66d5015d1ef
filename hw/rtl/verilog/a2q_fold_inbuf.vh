// a2q_fold_inbuf.vh: a piece of the folded MAC units' body, one copy for all of them: the double-buffered input
//   vector memory ibuf (address {bank, sf}) and the write side's bank / word / element counters.
// Included by a2q_mvau, a2q_mvau_packed; hw.rtl.generate.library_text pastes it in place, so generated files are
//   self-contained.
// Uses the including unit's XW, SFW, SF_LAST, SIW, in_fire, word_done, word_next, wword, wbank, wsf, wsi (the
//   SIMD-word packer before it).
    reg [XW-1:0] ibuf [0:(2 << SFW) - 1];                  // address {bank, sf}

    always @(posedge clk) begin
        if (in_fire && word_done) ibuf[{wbank, wsf}] <= word_next;
    end

    always @(posedge clk) begin
        if (rst) begin
            wbank <= 1'b0;
            wsf   <= {SFW{1'b0}};
            wsi   <= {SIW{1'b0}};
        end else if (in_fire) begin
            wword <= word_next;
            if (word_done) begin
                wsi <= {SIW{1'b0}};
                if (wsf == SF_LAST) begin
                    wsf   <= {SFW{1'b0}};
                    wbank <= ~wbank;
                end else begin
                    wsf <= wsf + 1'b1;
                end
            end else begin
                wsi <= wsi + 1'b1;
            end
        end
    end
