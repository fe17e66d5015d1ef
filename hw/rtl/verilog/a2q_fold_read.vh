// a2q_fold_read.vh: a piece of the folded MAC units' body, one copy for all of them: stage 1 of the pipeline: the
//   weight word wq and input word xq of the issued step, with its first / last / fold flags.
// Included by a2q_mvau, a2q_mvau_packed; hw.rtl.generate.library_text pastes it in place, so generated files are
//   self-contained.
// Uses the including unit's issue, wmem, ibuf, rbank, isf, inf, iwa.
    reg              v1, first1, last1;
    reg  [NFW-1:0]   nf1;
    reg  [WW-1:0]    wq;
    reg  [XW-1:0]    xq;

    always @(posedge clk) begin
        if (issue) begin
            wq <= wmem[iwa];
            xq <= ibuf[{rbank, isf}];
            first1 <= (isf == {SFW{1'b0}});
            last1  <= (isf == SF_LAST);
            nf1    <= inf;
        end
    end

