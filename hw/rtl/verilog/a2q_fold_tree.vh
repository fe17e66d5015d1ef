// a2q_fold_tree.vh: a piece of the folded MAC units' body, one copy for all of them: lane p's adder tree over its
//   SIMD products at ACC_BITS (heap order) and its accumulator acc, wrapping modulo 2^ACC_BITS.
// Included by a2q_mvau, a2q_vvau through a2q_fold_lane.vh (inside their per-lane generate loop g_pe, genvars p, s);
//   hw.rtl.generate.library_text pastes it in place, so generated files are self-contained.
// Uses the including unit's prod, PW, adv, v2, first2.
            // adder tree over SIMD products at ACC_BITS: heap order, node i = node 2i+1 + node 2i+2,
            // leaves SIMD-1 .. 2*SIMD-2, root node 0 at the low bits
            (* keep *) wire [(2*SIMD-1)*ACC_BITS-1:0] tree /* verilator split_var */;
            reg [ACC_BITS-1:0] acc;
            for (s = 0; s < SIMD; s = s + 1) begin : g_leaf
                wire [PW-1:0] pr = prod[(p*SIMD + s)*PW +: PW];
                if (ACC_BITS > PW) begin : g_ext
                    assign tree[(SIMD-1+s)*ACC_BITS +: ACC_BITS] = {{(ACC_BITS-PW){pr[PW-1]}}, pr};
                end else if (ACC_BITS == PW) begin : g_same
                    assign tree[(SIMD-1+s)*ACC_BITS +: ACC_BITS] = pr;
                end else begin : g_wrap
                    // accumulator narrower than one product: keep the low bits (wrap mod 2^ACC_BITS)
                    /* verilator lint_off UNUSEDSIGNAL */
                    wire [PW-1:0] pr_full = pr;  // high bits intentionally dropped by the modular sum
                    /* verilator lint_on UNUSEDSIGNAL */
                    assign tree[(SIMD-1+s)*ACC_BITS +: ACC_BITS] = pr_full[ACC_BITS-1:0];
                end
            end
            for (s = 0; s < SIMD - 1; s = s + 1) begin : g_node
                assign tree[s*ACC_BITS +: ACC_BITS] = tree[(2*s+1)*ACC_BITS +: ACC_BITS]
                                                    + tree[(2*s+2)*ACC_BITS +: ACC_BITS];
            end
            always @(posedge clk) begin
                if (adv && v2) acc <= first2 ? tree[ACC_BITS-1:0] : acc + tree[ACC_BITS-1:0];
            end

