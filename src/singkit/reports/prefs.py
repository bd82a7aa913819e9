"""Which metric matters and which way is better: flags first, then `general:` in the config.

Only the primary metric has a configured direction (`general.maximize`); for every other
metric the name decides: loss-like names (loss, error, perplexity, time, ...) are minimized,
everything else (acc, f1, reward, ...) maximized.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from singkit.environment import Environment
from singkit.exceptions import ConfigError

_LOWER_IS_BETTER = re.compile(
    r"loss|err|mse|mae|rmse|nll|perplex|ppl|wer|cer|regret|latency|time|cost|dist|fid|lpips", re.I)
# hparams that only repeat a configuration; sweeps are summarized over them
REPEAT_KEYS = frozenset({"seed", "repeat", "rep", "trial", "replica", "run"})


@dataclass
class MetricPrefs:
    primary: str | None = None
    maximize: bool | None = None   # direction of the primary metric; None: judge by its name
    step_name: str = "step"

    def higher_is_better(self, metric: str) -> bool:
        if self.primary is not None and metric == self.primary and self.maximize is not None:
            return self.maximize
        return not _LOWER_IS_BETTER.search(metric)


GENERAL_KEYS = ("primary-metric", "maximize", "step-name")


def metric_prefs(env: Environment, primary: str | None = None, maximize: bool | None = None) -> MetricPrefs:
    """Flags win; the config's `general` section fills the rest. A broken or missing config
    must not stop a report (it reads only the store), so it is reported and skipped."""
    general = configured_general(env)
    configured = general.get("primary-metric") or None
    primary = primary or configured
    if maximize is None and configured and primary == configured and "maximize" in general:
        maximize = bool(general["maximize"])  # the config's direction is about its own primary metric
    return MetricPrefs(primary=primary, maximize=maximize, step_name=str(general.get("step-name") or "step"))


def configured_general(env: Environment) -> dict:
    """primary-metric, maximize and step-name from the layered config.

    Loading and validating the config takes longer than listing 10,000 runs, so the three
    values are kept in the reports cache, keyed on every config layer's size and mtime.
    """
    files = [env.project_config, env.user_config, *env.extra_configs]
    stamp = []
    for path in files:
        try:
            st = os.stat(path)
            stamp.append([str(path), st.st_size, st.st_mtime_ns])
        except OSError:
            stamp.append([str(path), None, None])
    if all(size is None for _, size, _ in stamp):
        return {}
    from singkit.reports.cache import SummaryCache
    from singkit.reports.source import StoreLayout

    key = "config-general:" + json.dumps(stamp)
    with SummaryCache(StoreLayout(env.home)) as cache:
        hit = cache.get_value(key)
        if isinstance(hit, dict):  # (anything else is a damaged row: looked up again)
            return hit
        try:
            from singkit.config import load_config

            general = load_config(env).general
        except ConfigError as error:
            env.err(f"warning: config not used for reports ({len(error.problems)} problem(s); "
                    "see `invoke config.validate`)")
            return {}
        found = {k: general[k] for k in GENERAL_KEYS if k in general}
        cache.put_value(key, found)
        return found
