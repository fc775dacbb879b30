"""Atomic outputs: whole or absent, never half-written, and readable like a file written with open()."""

import os

import numpy as np
import pytest

from demandnet.outputs import write_json, write_submission


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_outputs_get_the_mode_of_a_plain_file(tmp_path):
    write_json(tmp_path / "m.json", {"a": 1})
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_a_failed_write_leaves_the_previous_file_and_no_temp_file(tmp_path):
    path = tmp_path / "submission.csv"
    path.write_text("previous\n")
    with pytest.raises(ValueError, match="NaN"):
        write_submission(path, np.array(["a", "b"]), np.array([0.5, np.nan]))
    with pytest.raises(ValueError, match="2 item_ids but 1 predictions"):
        write_submission(path, np.array(["a", "b"]), np.array([0.5]))
    assert path.read_text() == "previous\n" and sorted(p.name for p in tmp_path.iterdir()) == ["submission.csv"]
    write_submission(path, np.array(["a", "b"]), np.array([0.25, 1.5]))
    assert path.read_text() == "item_id,deal_probability\na,0.250000\nb,1.000000\n"
