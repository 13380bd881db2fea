// Loaded by every page (marketplace_app.py head): registers the service worker, shows this marketplace's colour
// and name to the browser, and turns the browser's install offer into the "Install app" button
// (components/install.py: hidden until this script adds the rule that shows it).
(function () {
  "use strict";
  var BRAND = __BRAND__;

  function meta(name, content) {
    if (!content) return;
    var tag = document.querySelector('meta[name="' + name + '"]');
    if (!tag) {
      tag = document.createElement("meta");
      tag.setAttribute("name", name);
      document.head.appendChild(tag);
    }
    tag.setAttribute("content", content);
  }
  // No marketplace here, or a paused one: the landing page (which otherwise boots the app on the first input, see
  // marketplace_app/first_paint.py) boots it at once, so the page says so. This script runs first (both deferred).
  if (!BRAND.open) window.__bootAppNow = true;
  meta("theme-color", BRAND.theme);
  meta("apple-mobile-web-app-title", BRAND.name);

  if ("serviceWorker" in navigator) {
    var register = function () {
      navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function (err) {
        console.warn("The offline support could not be installed:", err);
      });
    };
    if (document.readyState === "complete") register();
    else window.addEventListener("load", register);
  }

  var offer = null;
  var RULE_ID = "install-app-shown";
  function showInstall(shown) {
    var rule = document.getElementById(RULE_ID);
    if (shown && !rule) {
      rule = document.createElement("style");
      rule.id = RULE_ID;
      rule.textContent = ".install-app { display: inline-flex !important; }";
      document.head.appendChild(rule);
    } else if (!shown && rule) {
      rule.remove();
    }
  }
  window.addEventListener("beforeinstallprompt", function (event) {
    event.preventDefault(); // our own button, in the header, instead of the browser's banner
    offer = event;
    showInstall(true);
  });
  window.addEventListener("appinstalled", function () {
    offer = null;
    showInstall(false);
  });
  document.addEventListener("click", function (event) {
    var button = event.target && event.target.closest ? event.target.closest(".install-app") : null;
    if (!button || !offer) return;
    var shown = offer;
    offer = null;
    showInstall(false); // an offer can be used once; the browser fires a new one if the user declines
    shown.prompt();
    if (shown.userChoice) shown.userChoice.catch(function () {});
  });
})();
