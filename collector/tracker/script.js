/* Privacy-first analytics tracker: https://collector.example/js/script.js
   No cookies. The only thing ever stored in the browser is the visitor's own
   opt-out switch, set by collector.optOut() (localStorage "collector_ignore").
   Served minified by build.py, whose rules this source keeps: plain ES5, every
   statement ended by a semicolon, declared names never used as property names. */
(function (win, doc, nav, loc, pages, script) {
  var lastPage,
    data = script.dataset,
    endpoint = data.api || new URL("/api/event", script.src),
    hashMode = "hash" in data,
    DOWNLOAD = /\.(pdf|zip|rar|7z|gz|csv|docx?|xlsx?|pptx?|dmg|exe|msi|apk|mp3|mp4|mov)$/i;

  function storage(method, value) {
    try {
      return localStorage[method]("collector_ignore", value);
    } catch (error) {}
  }

  function ignored() {
    return storage("getItem") ||
      /* Promise: Do Not Track and Global Privacy Control are honoured in the browser. */
      /1/.test([nav.doNotTrack, win.doNotTrack, nav.msDoNotTrack]) || nav.globalPrivacyControl ||
      /* Development and automated browsers are not visitors, unless the site says so. */
      !("includeLocalhost" in data) && /^(localhost|127\..*|\[::1\]|)$/.test(loc.hostname) ||
      !("allowAutomation" in data) &&
        (nav.webdriver || win._phantom || win.__nightmare || win.Cypress);
  }

  function send(name, options) {
    options = options || {};
    if (!ignored()) {
      var body = {
        n: name,
        u: hashMode ? loc.href : loc.href.split("#")[0],
        d: data.domain || loc.hostname,
        r: doc.referrer || null,
        w: win.innerWidth
      };
      if (hashMode) body.h = 1;
      if (options.props) body.p = options.props;
      if (options.interactive === false) body.i = false;
      body = JSON.stringify(body);
      /* A string body goes as text/plain: a simple request, no CORS preflight. */
      nav.sendBeacon(endpoint, body) ||
        fetch(endpoint, { method: "POST", body: body, keepalive: true });
    }
    if (options.callback) options.callback();
  }

  function pageview() {
    var page = loc.pathname + (hashMode ? loc.hash : "");
    /* replaceState for scroll bookkeeping or query tweaks is not a new page. */
    if (page != lastPage) {
      lastPage = page;
      send("pageview");
    }
  }

  function click(event) {
    var link = event.target.closest("a[href]");
    /* auxclick: a middle click opens the link too; right clicks do not count. */
    if (link && event.button < 2) {
      /* The query string and fragment stay behind: they may carry tokens. */
      var props = { props: { url: link.href.split(/[?#]/)[0] } };
      if ("downloads" in data && DOWNLOAD.test(link.pathname)) send("File Download", props);
      else if ("outbound" in data && link.host && link.host != loc.host)
        send("Outbound Link: Click", props);
    }
  }

  var queue = win.collector && win.collector.q || [],
    collector = win.collector = function (name, options) {
      send(name, options);
    };
  collector.optOut = function () {
    storage("setItem", 1);
  };
  collector.optIn = function () {
    storage("removeItem");
  };

  ["pushState", "replaceState"].forEach(function (method) {
    var original = pages[method];
    pages[method] = function () {
      original.apply(this, arguments);
      pageview();
    };
  });
  win.addEventListener("popstate", pageview);
  if (hashMode) win.addEventListener("hashchange", pageview);
  doc.addEventListener("click", click);
  doc.addEventListener("auxclick", click);

  /* A prerendered page counts only once the visitor actually sees it. */
  doc.prerendering ? doc.addEventListener("prerenderingchange", pageview) : pageview();
  queue.forEach(function (call) {
    send.apply(win, call);
  });
})(window, document, navigator, location, history, document.currentScript);
