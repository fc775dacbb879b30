"""The run report: plots and report.html in RUN_DIR/report/ (`python -m demandnet.report RUN_DIR` rebuilds it).

collect.py  end of training: validation predictions and the modality ablation, written to the run dir
ablation.py the ablation's batch transforms and the validation predict pass
tables.py   RMSE per target bucket and per category; the learning curves from the csv logger
plots.py    the figures (matplotlib, Agg)
html.py     the page
build.py    files of a run dir -> report/
"""

from demandnet.report.build import NotARunDir, build_report

__all__ = ["NotARunDir", "build_report"]
