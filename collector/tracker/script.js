/* Privacy-first analytics tracker: https://collector.example/js/script.js
   No cookies. The only thing ever stored in the browser is the visitor's own
   opt-out switch, set by collector.optOut() (localStorage "collector_ignore").
   Served minified by build.py, whose rules this source keeps: plain ES5, every
   statement ended by a semicolon, declared names never used as property names.
   Lines between "//@ if <feature>" and "//@ end" belong to the script variants
   named after Plausible's (script.hash.js, script.tagged-events.js...): variants.py. */
(function (win, doc, nav, loc, pages, script) {
  var lastPage, current, since, engaged, deepest, reported,
    data = script.dataset,
    endpoint = data.api || new URL("/api/event", script.src),
//@ if outbound-links file-downloads tagged-events
    /* Variants that track clicks: the feature the name asks for, or data-outbound and
       data-downloads as on any of them. */
//@ if outbound-links
    outbound = 1,
//@ else
    outbound = "outbound" in data,
//@ end
//@ if file-downloads
    downloads = 1,
    /* Plausible's file types, or its attributes: file-types (the list instead) and
       add-file-types (more), comma-separated. */
    fileTypes = script.getAttribute("file-types") || [script.getAttribute("add-file-types"),
      "pdf,xlsx,docx,txt,rtf,csv,exe,key,pps,ppt,pptx,7z,pkg,rar,gz,zip,avi,mov,mp4,mpeg," +
      "wmv,midi,mp3,wav,wma,dmg"].join(),
    DOWNLOAD = new RegExp("\\.(" + fileTypes.replace(/,/g, "|") + ")$", "i"),
//@ else
    downloads = "downloads" in data,
    DOWNLOAD = /\.(pdf|zip|rar|7z|gz|csv|docx?|xlsx?|pptx?|dmg|exe|msi|apk|mp3|mp4|mov)$/i,
//@ end
//@ end
//@ if hash
    hashMode = 1;
//@ else
    hashMode = "hash" in data;
//@ end

  function storage(method, value, key) {
    try {
      return localStorage[method](key || "collector_ignore", value);
    } catch (error) {}
  }

  function ignored() {
    /* The opt-out switch ("1"), Plausible's ("true"); and the promise: Do Not Track and
       Global Privacy Control are honoured in the browser. None of the other values these
       take ("0", "false", "unspecified", "no", none) has a 1 or a t. */
    return /1|t/.test([storage("getItem"), storage("getItem", 0, "plausible_ignore"),
                       nav.doNotTrack, win.doNotTrack, nav.msDoNotTrack]) ||
      nav.globalPrivacyControl ||
//@ if not local
      /* Development and automated browsers are not visitors, unless the site says so. */
      !("includeLocalhost" in data) && /^(localhost|127\..*|\[::1\]|)$/.test(loc.hostname) ||
//@ end
      !("allowAutomation" in data) &&
        (nav.webdriver || win._phantom || win.__nightmare || win.Cypress);
  }

//@ if exclusions
  /* Plausible's data-include and data-exclude: comma-separated paths where "*" stands for
     one path segment and "**" for any depth; pages left out send no pageview. */
  function listed(paths) {
    var path = loc.pathname + (hashMode ? loc.hash : "");
    return paths && paths.split(",").some(function (glob) {
      return new RegExp("^" + glob.trim().replace(/\*\*?/g, function (stars) {
        return stars[1] ? ".*" : "[^/]*";
      }) + "/?$").test(path);
    });
  }

  function excluded() {
    return data.include && !listed(data.include) || listed(data.exclude);
  }

//@ end
  function post(body) {
    body = JSON.stringify(body);
    /* A string body goes as text/plain: a simple request, no CORS preflight. */
    nav.sendBeacon(endpoint, body) ||
      fetch(endpoint, { method: "POST", body: body, keepalive: true });
  }

  /* Engagement, as Plausible's tracker reports it: how long the page was visible and
     focused, and how far down it was seen. An "engagement" event goes when the page is
     hidden or loses focus, and before the next page of a single-page app; only when it
     has news: a deeper scroll, or 3 seconds more.
     The lowest pixel seen; past the end of a short page it reads above 100%, which the
     collector counts as 100, as Plausible's does. */
  function scrolled() {
    deepest = Math.max(deepest, win.scrollY + win.innerHeight);
  }

  function engage() {
    engaged += since && Date.now() - since;
    since = 0;
    if (current && !ignored() && (reported < deepest || engaged > 2999)) {
      reported = deepest;
      /* The pageview's own fields (page, site, props) say which page it was. */
      current.n = "engagement";
      current.e = engaged;
      current.sd = Math.round(100 * deepest / doc.scrollingElement.scrollHeight);
      engaged = 0;
      post(current);
    }
  }

  function visibility() {
    /* Time counts while the page is visible and focused. */
    !doc.hidden && doc.hasFocus() ? since = since || Date.now() : engage();
//@ if not manual
    /* A page opened in the background or prerendered counts once the visitor sees it. */
    lastPage || doc.hidden || pageview();
//@ end
  }

  function send(name, options) {
    options = options || {};
    var body,
      isPageview = name == "pageview";
    /* The page a single-page app leaves reports its engagement before the next one counts. */
    if (isPageview) engage();
    if (ignored()
//@ if exclusions
        || isPageview && excluded()
//@ end
    ) {
      if (isPageview) current = 0;
    } else {
//@ if pageview-props
      /* Plausible's event-<prop> attributes on the script tag: props of every event. */
      var tagProps = {};
      script.getAttributeNames().forEach(function (attribute) {
        if (!attribute.indexOf("event-"))
          tagProps[attribute.slice(6)] = script.getAttribute(attribute);
      });
//@ end
      body = {
        n: name,
//@ if manual
        u: options.u || options.url || (hashMode ? loc.href : loc.href.split("#")[0]),
//@ else
        u: hashMode ? loc.href : loc.href.split("#")[0],
//@ end
        d: data.domain || loc.hostname,
        r: doc.referrer,
        w: win.innerWidth,
//@ if pageview-props
        p: Object.assign(tagProps, options.props),
//@ else
        p: options.props,
//@ end
//@ if revenue
        $: options.revenue,
//@ end
        i: options.interactive,
        h: hashMode
      };
      if (isPageview) {
        current = body;
        reported = engaged = deepest = 0;
        since = Date.now();
        scrolled();
      }
      post(body);
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

//@ if tagged-events
  /* Plausible's tagged events: the class plausible-event-name=Signup on what was clicked or
     up to three levels above it sends "Signup", plausible-event-<prop>=<value> classes its
     props ("+" is a space); a tagged form sends its event when it is submitted. */
  function tagOf(element) {
    var tag = { props: {} }, found;
//@ if revenue
    tag.revenue = {};
//@ end
    [].forEach.call(element && element.classList || [], function (className) {
      if (found = /^plausible-event-(.+?)(=|--)(.+)$/.exec(className)) {
        if (/^name$/i.test(found[1])) tag.name = found[3].replace(/\+/g, " ");
        else tag.props[found[1]] = found[3].replace(/\+/g, " ");
      }
//@ if revenue
      if (found = /^plausible-revenue-(.+?)(=|--)(.+)$/.exec(className))
        tag.revenue[found[1]] = found[3];
//@ end
    });
    return tag.name && tag;
  }

  function taggedClick(event, link) {
    var element = event.target, depth = 0, tag, inForm;
    for (; element && depth++ < 4; element = element.parentNode) {
      /* Clicks inside a form count only as its submission. */
      inForm = inForm || /^form$/i.test(element.tagName);
      tag = tag || tagOf(element);
    }
    if (tag && !inForm) {
      if (link) tag.props.url = link.href.split(/[?#]/)[0];
      send(tag.name, tag);
    }
    return tag;
  }

  doc.addEventListener("submit", function (event) {
    var tag = tagOf(event.target) || tagOf(event.target.parentNode);
    if (tag) send(tag.name, tag);
  });

//@ end
//@ if outbound-links file-downloads tagged-events
  function click(event) {
    var link = event.target.closest("a[href]"), props;
    /* auxclick: a middle click opens the link too; right clicks do not count. */
    if (event.button > 1 ||
//@ if tagged-events
        taggedClick(event, link) ||
//@ end
        !link) return;
    /* The query string and fragment stay behind: they may carry tokens. */
    props = { props: { url: link.href.split(/[?#]/)[0] } };
    if (downloads && DOWNLOAD.test(link.pathname)) send("File Download", props);
    else if (outbound && link.host && link.host != loc.host) send("Outbound Link: Click", props);
  }

  doc.addEventListener("click", click);
  doc.addEventListener("auxclick", click);

//@ end
  /* Calls made before the script loaded wait in collector.q, or in plausible.q for
     Plausible's snippet; both names are the same function from now on. */
  var queue = (win.collector || win.plausible || {}).q || [],
    collector = win.collector = win.plausible = send;
  collector.optOut = function () {
    storage("setItem", 1);
  };
  collector.optIn = function () {
    storage("removeItem");
  };

  doc.addEventListener("visibilitychange", visibility);
  win.addEventListener("blur", visibility);
  win.addEventListener("focus", visibility);
  doc.addEventListener("scroll", scrolled);
//@ if not manual
  ["pushState", "replaceState"].forEach(function (method) {
    var original = pages[method];
    pages[method] = function () {
      original.apply(this, arguments);
      pageview();
    };
  });
  win.addEventListener("popstate", pageview);
  if (hashMode) win.addEventListener("hashchange", pageview);
  /* Back to a page kept in the browser's memory: a new view of it, as on Plausible. */
  win.addEventListener("pageshow", function (event) {
    event.persisted && pageview(lastPage = 0);
  });
//@ end
  visibility();
  queue.forEach(function (call) {
    send.apply(win, call);
  });
})(window, document, navigator, location, history,
//@ if compat
  /* Plausible's compat snippet finds its script by id="plausible". */
  document.getElementById("plausible") ||
//@ end
  document.currentScript);
