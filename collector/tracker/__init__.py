"""The tracking script sites embed: source in ``script.js``, built by ``build.py``
(comments, whitespace and long local names removed), served by
``assets.script_endpoint`` at ``/js/script.js``."""
