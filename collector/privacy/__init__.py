"""Privacy at ingress: the one package allowed to see a visitor's IP address.

It receives the raw IP (and user agent) as function arguments and returns only
derived values: a daily-salted visitor hash, a yes/no for exclusions. Nothing
here stores, logs or returns the address itself.
"""

from collector.privacy.client_ip import ClientAddressResolver
from collector.privacy.consent import opted_out
from collector.privacy.salts import SaltKeeper
from collector.privacy.urls import CleanPage, PageUrlCleaner, clean_referrer
from collector.privacy.visitor import visitor_hash

__all__ = ["ClientAddressResolver", "CleanPage", "PageUrlCleaner", "SaltKeeper", "clean_referrer",
           "opted_out", "visitor_hash"]
