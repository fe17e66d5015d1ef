// a2q_fold_out.vh: a piece of the folded MAC units' body, one copy for all of them: the output side: a finished fold
//   waits in pend, then leaves one result per beat from the shift register ser.
// Included by a2q_mvau_packed, a2q_vvau through a2q_fold_back.vh (a2q_mvau has the variant with wide beats and
//   overlap);
//   hw.rtl.generate.library_text pastes it in place, so generated files are self-contained.
// Uses the including unit's res, adv, v2, last2, fin / pend / pend_valid (declared by the unit).
    // ------------------------------------------------------------------ output: fold results -> one per beat
    reg [PE*OUT_W-1:0] ser;
    reg                ser_valid;
    reg [PEW-1:0]      ser_cnt;
    wire               out_fire = ser_valid && out_ready;
    wire               ser_free = !ser_valid || (out_fire && ser_cnt == PE_LAST);
    assign out_data  = ser[OUT_W-1:0];
    assign out_valid = ser_valid;

    always @(posedge clk) begin
        if (rst) begin
            fin        <= 1'b0;
            pend_valid <= 1'b0;
            ser_valid  <= 1'b0;
            ser_cnt    <= {PEW{1'b0}};
        end else begin
            if (fin && !pend_valid) begin
                pend       <= res;
                pend_valid <= 1'b1;
                fin        <= 1'b0;
            end
            if (adv && v2 && last2) fin <= 1'b1;
            if (ser_free && pend_valid) begin
                ser        <= pend;
                ser_valid  <= 1'b1;
                ser_cnt    <= {PEW{1'b0}};
                pend_valid <= 1'b0;
            end else if (out_fire) begin
                ser     <= ser >> OUT_W;
                ser_cnt <= ser_cnt + 1'b1;
                if (ser_cnt == PE_LAST) ser_valid <= 1'b0;
            end
        end
    end
