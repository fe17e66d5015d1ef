// a2q_fold_inword.vh: a piece of the MVAUs' input side, one copy for a2q_mvau and a2q_mvau_packed: the bank flags
//   and the SIMD-word packer's counters, shift register and next word (the unit drives word_next / word_done for
//   its beat width, then a2q_fold_front.vh takes over).
// Included by a2q_mvau, a2q_mvau_packed; hw.rtl.generate.library_text pastes it in place, so generated files are
//   self-contained.
// Uses the including unit's SFW, SIW, XW and its input stream.
    reg  [1:0]       full;           // bank b holds a complete input vector
    reg              wbank;
    reg  [SFW-1:0]   wsf;
    reg  [SIW-1:0]   wsi;
    /* verilator lint_off UNUSEDSIGNAL */
    reg  [XW-1:0]    wword;          // shift register: its oldest element is shifted out unused
    /* verilator lint_on UNUSEDSIGNAL */
    wire [XW-1:0]    word_next;
    wire             in_fire = in_valid && in_ready;
