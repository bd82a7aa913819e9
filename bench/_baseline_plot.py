"""The bare pandas + seaborn script report.plot is measured against: the same runs' metrics,
one panel per metric, a line per run, PNG. What a researcher would write by hand.

    python bench/_baseline_plot.py STORE_HOME JOB OUT.png
"""

import glob
import sys

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

home, job, out = sys.argv[1:4]
frames = []
for path in sorted(glob.glob(f"{home}/jobs/{job}/runs/*/run.log")):
    events = pd.read_json(path, lines=True)
    lines = events[events["event"] == "metrics"]
    values = pd.json_normalize(lines["metrics"].tolist())
    values["step"] = lines["step"].to_numpy()
    values["run"] = path.split("/")[-2]
    frames.append(values)
data = pd.concat(frames).melt(id_vars=["run", "step"], var_name="metric")
# errorbar=None: with the default 95% bootstrap CI this script takes minutes, not seconds
grid = sns.relplot(data=data, x="step", y="value", hue="run", col="metric", kind="line",
                   errorbar=None, facet_kws={"sharey": False})
grid.savefig(out)
