"""A PTB-XL folder in miniature (the database and SCP CSVs, WFDB records at 100 Hz) for loader and experiment tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from qfl_qiskit.data.external import PTBXL_LEADS

SCP_ROWS = [  # code, diagnostic, rhythm, diagnostic_class, diagnostic_subclass
    ("NORM", 1.0, "", "NORM", "NORM"),
    ("IMI", 1.0, "", "MI", "IMI"),
    ("LMI", 1.0, "", "MI", "LMI"),
    ("ASMI", 1.0, "", "MI", "AMI"),
    ("NDT", 1.0, "", "STTC", "STTC"),
    ("IRBBB", 1.0, "", "CD", "IRBBB"),
    ("CLBBB", 1.0, "", "CD", "CLBBB"),
    ("LAFB", 1.0, "", "CD", "LAFB/LPFB"),
    ("LVH", 1.0, "", "HYP", "LVH"),
    ("SR", "", 1.0, "", ""),
]


def write_ptbxl(root: Path, records: dict[int, tuple[str, int]], signal: Callable[[int], np.ndarray]) -> Path:
    """Write ``records`` (ecg_id -> (scp_codes, strat_fold)) with ``signal(ecg_id)`` of shape (1000, 12) in mV."""
    import pandas as pd
    import wfdb

    (root / "records100" / "00000").mkdir(parents=True)
    rows = []
    for ecg_id, (codes, fold) in records.items():
        name = f"{ecg_id:05d}_lr"
        wfdb.wrsamp(name, fs=100, units=["mV"] * 12, sig_name=list(PTBXL_LEADS), p_signal=signal(ecg_id),
                    fmt=["16"] * 12, write_dir=str(root / "records100" / "00000"))
        rows.append({"ecg_id": ecg_id, "patient_id": 100.0 + ecg_id, "age": 50.0, "sex": 0, "report": "sinusrhythmus",
                     "scp_codes": codes, "strat_fold": fold, "filename_lr": f"records100/00000/{name}",
                     "filename_hr": f"records500/00000/{ecg_id:05d}_hr"})
    pd.DataFrame(rows).to_csv(root / "ptbxl_database.csv", index=False)
    scp = pd.DataFrame(SCP_ROWS, columns=["code", "diagnostic", "rhythm", "diagnostic_class", "diagnostic_subclass"])
    scp.insert(1, "description", "x")
    scp.rename(columns={"code": ""}).to_csv(root / "scp_statements.csv", index=False)
    return root
