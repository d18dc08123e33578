"""Real-world user-agent strings and what each must be classified as.

Inline tables, shared by the user-agent and bot tests, so a clone without the optional
corpus ../shared/testdata/useragents still covers browsers, systems, devices and bots.
"""

from __future__ import annotations

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)

BROWSERS: list[tuple[str, tuple[str, str, str, str, str]]] = [
    (CHROME_WINDOWS, ("Chrome", "120.0", "Windows", "10", "Desktop")),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
        ("Firefox", "121.0", "Windows", "10", "Desktop"),
    ),
    (
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91"
        ),
        ("Microsoft Edge", "120.0", "Windows", "10", "Desktop"),
    ),
    (
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.2 Safari/605.1.15"
        ),
        ("Safari", "17.2", "Mac", "10.15", "Desktop"),
    ),
    (
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/145.0.0.0 Safari/537.36"
        ),
        ("Chrome", "145.0", "Mac", "10.15", "Desktop"),
    ),
    (
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36"
        ),
        ("Chrome", "120.0", "GNU/Linux", "", "Desktop"),
    ),
    (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        ("Firefox", "121.0", "Ubuntu", "", "Desktop"),
    ),
    (
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
        ),
        ("Safari", "17.4", "iOS", "17.4", "Mobile"),
    ),
    (
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) CriOS/122.0.6261.89 Mobile/15E148 Safari/604.1"
        ),
        ("Chrome", "122.0", "iOS", "17.4", "Mobile"),
    ),
    (
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.6099.144 Mobile Safari/537.36"
        ),
        ("Chrome", "120.0", "Android", "14", "Mobile"),
    ),
    (
        (
            "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
            "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36"
        ),
        ("Samsung Browser", "23.0", "Android", "13", "Mobile"),
    ),
    (
        "Mozilla/5.0 (Android 14; Mobile; rv:123.0) Gecko/123.0 Firefox/123.0",
        ("Firefox", "123.0", "Android", "14", "Mobile"),
    ),
    (
        (
            "Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1"
        ),
        ("Safari", "17.2", "iOS", "17.2", "Tablet"),
    ),
    (
        (
            "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36"
        ),
        ("Chrome", "120.0", "Android", "13", "Tablet"),
    ),
    (
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36 OPR/110.0.0.0"
        ),
        ("Opera", "110.0", "Windows", "10", "Desktop"),
    ),
    (
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36 Vivaldi/6.7.3329.35"
        ),
        ("Vivaldi", "6.7", "Windows", "10", "Desktop"),
    ),
    (
        (
            "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/109.0.0.0 Safari/537.36"
        ),
        ("Chrome", "109.0", "Windows", "7", "Desktop"),
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Trident/7.0; rv:11.0) like Gecko",
        ("Internet Explorer", "11.0", "Windows", "10", "Desktop"),
    ),
    (
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Safari/605.1.15"
        ),
        ("Safari", "17.5", "Mac", "14.5", "Desktop"),
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:126.0) Gecko/20100101 Firefox/126.0",
        ("Firefox", "126.0", "Mac", "10.15", "Desktop"),
    ),
    (
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) FxiOS/126.0 Mobile/15E148 Safari/605.1.15"
        ),
        ("Firefox", "126.0", "iOS", "17.5", "Mobile"),
    ),
    (
        (
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Mobile Safari/537.36 EdgA/124.0.2478.64"
        ),
        ("Microsoft Edge", "124.0", "Android", "10", "Mobile"),
    ),
    (
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UQ1A.240205.004; wv) "
            "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 "
            "Mobile Safari/537.36"
        ),
        ("Mobile App", "", "Android", "14", "Mobile"),
    ),
    (
        (
            "Mozilla/5.0 (Linux; Android 14; SM-X910) AppleWebKit/537.36 (KHTML, like Gecko) "
            "SamsungBrowser/25.0 Chrome/121.0.0.0 Safari/537.36"
        ),
        ("Samsung Browser", "25.0", "Android", "14", "Tablet"),
    ),
]

BOTS: list[tuple[str, str]] = [
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "crawler"),
    (
        (
            "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/120.0.6099.71 Mobile Safari/537.36 "
            "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
        ),
        "crawler",
    ),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "crawler"),
    (
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/120.0.0.0 Safari/537.36"
        ),
        "headless",
    ),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "crawler"),
    (
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
            "+https://openai.com/gptbot)"
        ),
        "crawler",
    ),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "crawler"),
    ("Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", "crawler"),
    (
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.6367.29 Safari/537.36 Puppeteer"
        ),
        "headless",
    ),
    ("curl/8.4.0", "http-client"),
    ("python-requests/2.31.0", "http-client"),
    ("PostmanRuntime/7.37.3", "http-client"),
    ("Apache-HttpClient/4.5.14 (Java/17.0.9)", "http-client"),
]
