"""The one Markdown table helper: the GitHub form every table of the stages has, and a row that does not fit its
columns is an error, not a shifted table."""

from __future__ import annotations

import pytest

from a2qflow.hw.markdown import table


def test_table_is_the_github_form_with_left_and_right_columns():
    assert table(["layer", "P", "note"], "lrl", [["fc0", 12, ""], ["fc1", 9, "UNSAFE"]]) == [
        "| layer | P | note |", "|---|---:|---|", "| fc0 | 12 |  |", "| fc1 | 9 | UNSAFE |"]
    assert table(["a"], "r", []) == ["| a |", "|---:|"]


def test_a_row_with_the_wrong_number_of_cells_or_a_bad_alignment_is_an_error():
    with pytest.raises(ValueError, match="row 1 has 1 cells for 2 columns"):
        table(["a", "b"], "ll", [[1, 2], [3]])
    with pytest.raises(ValueError, match="one of l / r per column"):
        table(["a", "b"], "lc", [])


def test_the_plan_table_comes_from_the_helper():
    """plan.md keeps its columns: one header, one alignment row, one row per layer, 13 cells each."""
    from a2qflow.hw.compiler.plan import LayerPlan, Plan

    lp = LayerPlan(name="fc0", kind="dense", K=64, out_channels=32, input_bits=4, input_signed=False, weight_bits=4,
                   acc_bits_datatype=15, acc_bits_l1=13, acc_bits_exact=12, acc_bits=12, target_acc_bits=None,
                   unsafe=True, thr_bits=13, acc_min=-5, acc_max=9, l1_max=3, sparsity=0.2, out_bits=4,
                   out_signed=False, simd=4, pe=4)
    lines = Plan("m", "forced:12", [lp]).table().splitlines()
    assert lines[1] == "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
    assert lines[2] == ("| fc0 | dense | 64 | 32 | 4u | 4 | 15 | 13 | 12 | - | **12** | 4 x 4 | "
                        "UNSAFE: below exact bound |")
