// a2q_fold_stage2.vh: a piece of the folded MAC units' body, one copy for all of them: stage 2: the registered
//   products and the flags v2 / first2 / last2 / nf2 that travel with them; then the declarations of the finished
//   fold's registers fin / pend_valid / pend and of the lane results res.
// Included by a2q_mvau, a2q_mvau_packed, a2q_vvau; hw.rtl.generate.library_text pastes it in place, so generated
//   files are self-contained.
// Uses the including unit's adv, v1 / first1 / last1 / nf1, prod_d and prod (the unit's products).
    always @(posedge clk) begin
        if (rst) begin
            v2 <= 1'b0;
        end else if (adv) begin
            v2 <= v1;
        end
    end
    always @(posedge clk) begin
        if (adv) begin
            prod   <= prod_d;
            first2 <= first1;
            last2  <= last1;
            nf2    <= nf1;
        end
    end

    // finished fold waiting for the output buffer
    reg                 fin;
    reg                 pend_valid;
    reg  [PE*OUT_W-1:0] pend;
    wire [PE*OUT_W-1:0] res;
