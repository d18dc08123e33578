"""The tracking script sites embed: source in ``script.js``, built by ``build.py``,
served by ``assets.script_endpoint`` at ``/js/script.js``."""

from collector.tracker.assets import SCRIPT, script_endpoint

__all__ = ["SCRIPT", "script_endpoint"]
