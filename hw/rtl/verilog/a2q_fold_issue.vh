// a2q_fold_issue.vh: a piece of the folded MAC units' body, one copy for all of them: adv (driven by the unit's
//   output side), the read bank and issue counters rbank / isf / inf / iwa, issue and issue_last.
// Included by a2q_mvau, a2q_mvau_packed, a2q_vvau; hw.rtl.generate.library_text pastes it in place, so generated
//   files are self-contained.
// Uses the including unit's full (which bank holds a complete input), the folding localparams.
    // ------------------------------------------------------------------ compute: issue -> read -> multiply -> tree/acc
    wire adv;                            // the pipeline advances (stalls only while a finished fold cannot leave)
    reg              rbank;
    reg  [SFW-1:0]   isf;
    reg  [NFW-1:0]   inf;
    reg  [WAW-1:0]   iwa;
    wire             issue = adv && full[rbank];
    wire             issue_last = (isf == SF_LAST) && (inf == NF_LAST);
