// a2q_fold_walk.vh: a piece of the folded MAC units' body, one copy for all of them: the issue order: sf inner, nf
//   outer, the weight address iwa alongside; the bank is released after the last step.
// Included by a2q_mvau, a2q_mvau_packed, a2q_vvau; hw.rtl.generate.library_text pastes it in place, so generated
//   files are self-contained.
// Uses the including unit's adv, full, rbank, issue_last, the issue counters.
    always @(posedge clk) begin
        if (rst) begin
            rbank <= 1'b0;
            isf   <= {SFW{1'b0}};
            inf   <= {NFW{1'b0}};
            iwa   <= {WAW{1'b0}};
            v1    <= 1'b0;
        end else if (adv) begin
            v1 <= full[rbank];
            if (full[rbank]) begin
                if (issue_last) begin
                    isf   <= {SFW{1'b0}};
                    inf   <= {NFW{1'b0}};
                    iwa   <= {WAW{1'b0}};
                    rbank <= ~rbank;
                end else begin
                    iwa <= iwa + WA_ONE;
                    if (isf == SF_LAST) begin
                        isf <= {SFW{1'b0}};
                        inf <= inf + 1'b1;
                    end else begin
                        isf <= isf + 1'b1;
                    end
                end
            end
        end
    end
