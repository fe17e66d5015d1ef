// a2q_fold_prod.vh: the declarations of the unpacked units' products and stage-2 flags, one copy for a2q_mvau and
//   a2q_vvau (their multiplier arrays differ: a shared input word vs one per channel); a2q_mvau_packed declares
//   packed products instead.
// Included by a2q_mvau, a2q_vvau; hw.rtl.generate.library_text pastes it in place.
// Uses the including unit's PE, SIMD, PW, NFW.
    // products at full width (kept, so synthesis cannot fold them into one wide multiply-accumulate)
    wire [PE*SIMD*PW-1:0] prod_d;
    (* keep *) reg [PE*SIMD*PW-1:0] prod;
    reg              v2, first2, last2;
    reg  [NFW-1:0]   nf2;

    genvar p, s;
