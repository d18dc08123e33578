"""The tracking script sites embed: source in ``script.js``, its variants under
Plausible's names chosen by ``variants.py``, built by ``build.py`` (comments,
whitespace and long local names removed), served by ``assets.script_endpoint`` at
``/js/script.js`` and ``/js/<name>``."""
