"""Reports over the job store: run tables, metric views, seaborn plots, sweep summaries, HTML.

Everything here reads only the store's files (see `source`), so reports work offline and the
same for local, docker and Singularity jobs. Heavy libraries (pandas, seaborn, matplotlib,
numpy) are imported inside the functions that draw.
"""
