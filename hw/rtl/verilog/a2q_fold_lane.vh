// a2q_fold_lane.vh: lane p of the unpacked MAC units, one copy for a2q_mvau and a2q_vvau: its adder tree and
//   accumulator (a2q_fold_tree.vh), then its thresholds (a2q_fold_thr.vh).
// Included by a2q_mvau, a2q_vvau inside their per-lane generate loop g_pe (genvars p and s);
//   hw.rtl.generate.library_text pastes it (and the fragments it includes) in place.
`include "a2q_fold_tree.vh"
`include "a2q_fold_thr.vh"
