// a2q_fold_back.vh: the back end of the one-result-per-beat MAC units, one copy for a2q_mvau_packed and a2q_vvau:
//   the threshold memory (a2q_fold_tmem.vh), then the output side (a2q_fold_out.vh).
// Included by a2q_mvau_packed, a2q_vvau after their per-lane loop (a2q_mvau has its own output side for wide beats);
//   hw.rtl.generate.library_text pastes it (and the fragments it includes) in place.
`include "a2q_fold_tmem.vh"

`include "a2q_fold_out.vh"
