// The marketplace's service worker, served by marketplace_app/pwa.py at /sw.js with its version filled in.
// Caches only what is the same for everyone and never changes under a URL: the offline page and the build's
// hashed files. Pages go to the network first and fall back to the offline page; the API, the WebSocket
// (/_event), uploads (/_upload), other origins and anything not a GET are never touched or cached.
"use strict";

const VERSION = "__VERSION__";
const PREFIX = "mp-";
const PRECACHE = PREFIX + "precache-" + VERSION;
const ASSETS = PREFIX + "assets-" + VERSION;
const OFFLINE_URL = "/offline.html";
const PRECACHE_URLS = __PRECACHE__;
const ICON = "/pwa/icon-192.png";

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(PRECACHE);
    // The offline page must be there, or this version does not install; the build's files are a bonus.
    await cache.add(new Request(OFFLINE_URL, { cache: "reload" }));
    // (Named by content hash: the copy the page just loaded into the HTTP cache is the right one.)
    await Promise.all(PRECACHE_URLS.filter((url) => url !== OFFLINE_URL).map(
      (url) => cache.add(url).catch(() => undefined)));
    await self.skipWaiting(); // a new deploy takes over at once: no tab keeps running a stale app
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const keep = new Set([PRECACHE, ASSETS]);
    const names = await caches.keys();
    await Promise.all(names.filter((name) => name.startsWith(PREFIX) && !keep.has(name))
      .map((name) => caches.delete(name)));
    await self.clients.claim();
  })());
});

function bypassed(url) {
  return url.origin !== self.location.origin || url.pathname.startsWith("/api/")
    || url.pathname.startsWith("/_") || url.pathname === "/sw.js" || url.pathname === "/ping";
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (bypassed(url)) return;
  if (request.mode === "navigate") {
    event.respondWith(page(request));
  } else if (url.pathname.startsWith("/assets/")) {
    event.respondWith(hashedAsset(request));
  }
  // anything else (icons, the manifest, pwa.js, robots.txt) goes to the network as if there were no worker
});

async function page(request) {
  try {
    return await fetch(request);
  } catch (err) {
    // Offline (or the server is unreachable): the precached page says so and reloads when the network is back.
    // Pages themselves are not cached: without the WebSocket a stale page could show nothing true anyway.
    const offline = await caches.match(OFFLINE_URL, { cacheName: PRECACHE });
    return offline || Response.error();
  }
}

async function hashedAsset(request) {
  // Cache first: Vite names these files by their content hash, so a URL never changes meaning.
  const hit = await caches.match(request, { ignoreSearch: false });
  if (hit) return hit;
  const response = await fetch(request);
  const cacheControl = response.headers.get("Cache-Control") || "";
  if (response.ok && response.type === "basic" && !cacheControl.includes("no-store")
      && !cacheControl.includes("private")) {
    const copy = response.clone();
    caches.open(ASSETS).then((cache) => cache.put(request, copy)).catch(() => undefined);
  }
  return response;
}

// Web push: the server sends {"title", "body", "url", "tag"} (JSON).
self.addEventListener("push", (event) => {
  let data = {};
  if (event.data) {
    try {
      data = event.data.json();
    } catch (err) {
      data = { body: event.data.text() };
    }
  }
  const title = data.title || "New notification";
  event.waitUntil(self.registration.showNotification(title, {
    body: data.body || "",
    tag: data.tag || undefined,
    icon: ICON,
    badge: ICON,
    data: { url: data.url || "/" },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const wanted = (event.notification.data && event.notification.data.url) || "/";
  let target = new URL(wanted, self.location.origin);
  if (target.origin !== self.location.origin) target = new URL("/", self.location.origin); // only this app's pages
  event.waitUntil((async () => {
    const tabs = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const same = tabs.find((tab) => tab.url === target.href);
    if (same) return same.focus();
    const open = tabs.find((tab) => new URL(tab.url).origin === self.location.origin && "navigate" in tab);
    if (open) {
      const focused = await open.focus();
      return (focused || open).navigate(target.href);
    }
    return self.clients.openWindow(target.href);
  })());
});
