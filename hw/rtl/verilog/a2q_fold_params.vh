// a2q_fold_params.vh: a piece of the folded MAC units' body, one copy for all of them: the folding localparams every
//   folded unit uses: SF / NF (synapse / neuron folds), the index widths, the memory depths, TW (one threshold word)
//   and the sized last-index constants.
// Included by a2q_mvau, a2q_mvau_packed, a2q_vvau; hw.rtl.generate.library_text pastes it in place, so generated
//   files are self-contained.
// Uses the including unit's parameters K, C, SIMD, PE, N_THR, THR_BITS.
    localparam integer SF = K / SIMD;
    localparam integer NF = C / PE;
    localparam integer SFW = (SF < 2) ? 1 : $clog2(SF);
    localparam integer NFW = (NF < 2) ? 1 : $clog2(NF);
    localparam integer SIW = (SIMD < 2) ? 1 : $clog2(SIMD);
    localparam integer PEW = (PE < 2) ? 1 : $clog2(PE);
    localparam integer WDEPTH = (NF * SF < 2) ? 2 : NF * SF;
    localparam integer WAW = $clog2(WDEPTH);
    localparam integer TDEPTH = (NF < 2) ? 2 : NF;
    localparam integer TW = (N_THR > 0) ? PE * N_THR * THR_BITS : 1;
    /* verilator lint_off WIDTHTRUNC */  // sized constants: each value fits its width by construction
    localparam [SFW-1:0] SF_LAST = SF - 1;
    localparam [NFW-1:0] NF_LAST = NF - 1;
    localparam [SIW-1:0] SI_LAST = SIMD - 1;
    localparam [PEW-1:0] PE_LAST = PE - 1;
    localparam [WAW-1:0] WA_ONE = 1;
    /* verilator lint_on WIDTHTRUNC */
