"""The XT import's old home: it is now the package singkit.config.xt (kept for code that imports these names)."""

from singkit.config.xt import XtImport, env_name, import_xt

__all__ = ["XtImport", "env_name", "import_xt"]
