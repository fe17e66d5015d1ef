// a2q_fold_front.vh: the MVAU's whole front, one copy for a2q_mvau and a2q_mvau_packed: the input vector buffer, the
//   fold control (issue order, bank flags, weight ROM) and stage 1 (the weight and input words of each step).
// Included by a2q_mvau, a2q_mvau_packed right after their SIMD-word packer; hw.rtl.generate.library_text pastes it
//   (and the fragments it includes) in place. a2q_vvau has its own patch buffer and includes the pieces itself.
`include "a2q_fold_inbuf.vh"

`include "a2q_fold_issue.vh"
    wire             set_full = in_fire && word_done && (wsf == SF_LAST);

`include "a2q_fold_wrom.vh"
`include "a2q_fold_read.vh"
`include "a2q_fold_walk.vh"
