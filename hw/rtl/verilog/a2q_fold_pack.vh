// a2q_fold_pack.vh: the input word packer of the one-element-per-beat MAC units, one copy for a2q_mvau_packed and
//   a2q_vvau, as a macro (the word's element count and width differ):
//   `A2Q_FOLD_PACK(N, WW): word_next is the WW-bit word of N IN_BITS elements with this beat's element in front
//                          (element i ends up at bits i*IN_BITS once the word is complete): in_data itself when N = 1,
//                          else in_data shifted into wword from the top.
// Included by a2q_mvau_packed (N = SIMD) and a2q_vvau (N = PE, a channel group); hw.rtl.generate.library_text pastes
//   it in place. a2q_mvau's packer also takes whole SIMD words (IN_LANES > 1), so it spells its own out.
// Uses the including unit's in_data, wword, word_next, IN_BITS.
`ifndef A2Q_FOLD_PACK_VH
`define A2Q_FOLD_PACK_VH
`define A2Q_FOLD_PACK(N, WW) \
    generate \
        if (N == 1) begin : g_pack1 \
            assign word_next = in_data; \
        end else begin : g_packn \
            assign word_next = {in_data, wword[WW-1:IN_BITS]}; \
        end \
    endgenerate
`endif
