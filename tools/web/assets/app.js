// mailtap web: the record in a browser, transcript first, live.
// Everything shown here came from the wire: it is only ever put on the page as text
// (textContent, text nodes), never as HTML. A message's HTML part is parsed into an inert
// document and only its text and structure copied onto the page (see "an HTML part").
"use strict";

const view = document.getElementById("view");
const live = document.getElementById("live");

// el("a", {href: "#/", className: "x"}, "text", child) — strings become text nodes.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "className") node.className = value;
    else if (key === "title") node.title = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (child instanceof EscapedText) {
      node.append(...textPieces(child));
      continue;
    }
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// `signal`: the navigation that asked; leaving the view aborts the request.
async function getJson(url, signal) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, signal });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return withTextDecoded(body);
}

// Text the API sends as base64 because it is not UTF-8 (an `X_encoding: "base64"` member
// beside it: a Latin-1 user name, a header; for an array, such as the audit's integrity
// lines, every item) is decoded in place for display: its UTF-8 as characters, every other
// octet as \xHH (textOfBase64), as `mailtap show` and the raw source show them.
function withTextDecoded(value) {
  if (Array.isArray(value)) {
    value.forEach(withTextDecoded);
  } else if (value !== null && typeof value === "object" && !(value instanceof EscapedText)) {
    for (const key of Object.keys(value)) {
      const name = key.endsWith("_encoding") ? key.slice(0, -"_encoding".length) : null;
      const encoded = name && value[key] === "base64" ? value[name] : undefined;
      if (typeof encoded === "string") {
        value[name] = textOfBase64(encoded);
        delete value[key];
      } else if (Array.isArray(encoded) && encoded.every((item) => typeof item === "string")) {
        value[name] = encoded.map(textOfBase64);
        delete value[key];
      } else {
        withTextDecoded(value[key]);
      }
    }
  }
  return value;
}

// A live region (aria-live) is given its text only when the text changes: the same words set
// again would be read to a screen reader's user again.
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// `old` comes to show what `fresh` shows, changing only what differs: a node that shows the
// same stays the same node, so the text a reader selected in it, the keyboard's focus on it and
// the scroll position survive a view rebuilt as the record grows, and a screen reader is told
// of what was added (aria-live), not of everything again. A <details> stays as the reader
// left it, open or folded.
function updateInPlace(old, fresh) {
  if (old.nodeType !== fresh.nodeType || old.nodeName !== fresh.nodeName) {
    old.replaceWith(fresh);
  } else if (old.nodeType === Node.TEXT_NODE) {
    if (old.data !== fresh.data) old.data = fresh.data;
  } else if (old.nodeType === Node.ELEMENT_NODE) {
    const readersOwn = old.localName === "details" ? "open" : null;
    for (const name of old.getAttributeNames()) {
      if (name !== readersOwn && !fresh.hasAttribute(name)) old.removeAttribute(name);
    }
    for (const name of fresh.getAttributeNames()) {
      if (old.getAttribute(name) !== fresh.getAttribute(name)) old.setAttribute(name, fresh.getAttribute(name));
    }
    updateChildrenInPlace(old, [...fresh.childNodes]);
  } else if (!old.isEqualNode(fresh)) {
    old.replaceWith(fresh);
  }
}

// `parent`'s children come to be `fresh`, position by position (see updateInPlace).
function updateChildrenInPlace(parent, fresh) {
  const old = [...parent.childNodes];
  fresh.forEach((child, i) => {
    if (i < old.length) updateInPlace(old[i], child);
    else parent.append(child);
  });
  for (const gone of old.slice(fresh.length)) gone.remove();
}

function showError(error) {
  view.replaceChildren(el("p", { className: "error" }, String(error.message || error)));
}

// Bytes the API sends as base64 (when they are not UTF-8) are shown as textOfBase64 shows
// them (getJson decodes them already; this also reads an object that did not come through it).
function bytesOf(object, name) {
  const value = object[name];
  if (value === null || value === undefined) return "";
  if (object[name + "_encoding"] === "base64") return textOfBase64(value);
  return value;
}

// Octets sent as base64 because they are not all UTF-8: one stray octet must not turn the
// UTF-8 around it into mojibake, so they are read as the raw source reads them (escapedText).
function textOfBase64(encoded) {
  const { text, escapes } = escapedText(Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0)), false);
  return escapes.length ? new EscapedText(text, escapes) : text;
}

// Recorded text with octets that are not UTF-8, each written \xHH: a string that knows where
// those escapes are, so the page marks them as it marks a control escape (wireText), and an
// octet E9 does not look like the four characters `\xe9` a client typed. `escapes`: the
// [start, end) of each, in order. String methods give plain strings: text built from it is
// built by joinText and sliceText, which keep the marks.
class EscapedText extends String {
  constructor(text, escapes) {
    super(text);
    this.escapes = escapes;
  }
}

const escapesOf = (value) => (value instanceof EscapedText ? value.escapes : []);

// An escape as the page shows it: marked, with a tooltip saying what it is.
function escapeMark(shown) {
  return el("span", { className: "esc", title: "an octet shown escaped, as mailtap show writes it" }, shown);
}

// The text's pieces for the page: plain strings, and each escape marked.
function textPieces(value) {
  const text = String(value);
  const pieces = [];
  let at = 0;
  for (const [start, end] of escapesOf(value)) {
    if (start > at) pieces.push(text.slice(at, start));
    pieces.push(escapeMark(text.slice(start, end)));
    at = end;
  }
  if (at < text.length) pieces.push(text.slice(at));
  return pieces;
}

// Strings and escaped texts one after the other, the escapes kept marked.
function joinText(...parts) {
  let text = "";
  const escapes = [];
  for (const part of parts) {
    if (part === undefined || part === null || part === false) continue;
    for (const [start, end] of escapesOf(part)) escapes.push([text.length + start, text.length + end]);
    text += String(part);
  }
  return escapes.length ? new EscapedText(text, escapes) : text;
}

// value.slice(start, end), the escapes inside it kept marked (one the cut splits is left as text).
function sliceText(value, start, end = value.length) {
  const text = String(value).slice(start, end);
  const escapes = escapesOf(value).filter(([s, e]) => s >= start && e <= end).map(([s, e]) => [s - start, e - start]);
  return escapes.length ? new EscapedText(text, escapes) : text;
}

// Text of a message (a text part, the raw source) with its control characters written \xHH of
// their octets and marked, as its octets that are not UTF-8 are and as `mailtap show` writes
// them: a NUL, an ESC or a C1 control is otherwise nothing on the page, or a character nobody
// sees. Tab and the line ends stay as they are: they are the text's layout. The escapes
// `value` holds already are kept.
function controlsEscaped(value) {
  const text = String(value);
  const held = escapesOf(value);
  const hex = (octet) => `\\x${octet.toString(16).padStart(2, "0")}`;
  let out = "";
  const escapes = [];
  let next = 0;  // the next of `held`
  for (let i = 0; i < text.length;) {
    if (next < held.length && held[next][0] === i) {
      const [start, end] = held[next++];
      escapes.push([out.length, out.length + end - start]);
      out += text.slice(start, end);
      i = end;
      continue;
    }
    const code = text.codePointAt(i);
    const ch = String.fromCodePoint(code);
    i += ch.length;
    if ((code < 0x20 && ch !== "\t" && ch !== "\n" && ch !== "\r") || (code >= 0x7f && code <= 0x9f)) {
      const shown = code < 0x80 ? hex(code) : hex(0xc2) + hex(code);
      escapes.push([out.length, out.length + shown.length]);
      out += shown;
    } else {
      out += ch;
    }
  }
  return escapes.length ? new EscapedText(out, escapes) : out;
}

// A header field the API gives as its octets (they are not UTF-8) comes with its text beside
// it, `<name>_decoded`: encoded words decoded, the other octets as they are (base64 too, so
// getJson reads it as it reads any such text: its UTF-8 as characters, every other octet as
// \xHH, marked). Those octets declare no charset: the page does not guess one for them, as it
// does not for a text part that names none, and says so beside the field.
function headerText(object, name) {
  return object[name + "_decoded"] === undefined ? bytesOf(object, name) : bytesOf(object, name + "_decoded");
}

function headerValue(object, name) {
  if (object[name + "_decoded"] === undefined) return bytesOf(object, name);
  return el("span", {}, headerText(object, name),
    el("span", {
      className: "muted undeclared-octets",
      title: "The field holds octets that are not UTF-8 and declares no charset for them: each is shown " +
        "as \\xHH, as mailtap show writes it, not read in a charset the message does not name",
    }, " (octets in no declared charset, shown as \\xHH)"));
}

function when(iso) {
  if (!iso) return "";
  return iso.replace("T", " ").replace(/\.\d+Z$/, "Z");
}

// The same time in the reader's own time zone, with its name, for a tooltip.
function localTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(undefined, { timeZoneName: "short" }) + " (your time)";
}

function seconds(fromIso, toIso) {
  if (!fromIso || !toIso) return null;
  return (Date.parse(toIso) - Date.parse(fromIso)) / 1000;
}

// A span the wall clock gives as negative (it was stepped back while the session ran: NTP at
// boot, date -s) has no duration to show: "?", as mailtap sessions prints it.
const CLOCK_WENT_BACK = "? (the wall clock was set back during the session)";

function duration(s) {
  if (s === null) return "";
  if (s < 0) return "?";
  if (s < 60) return s.toFixed(3) + "s";
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
}

function sessionDuration(s) {
  return s !== null && s < 0 ? CLOCK_WENT_BACK : duration(s);
}


// ---- live updates ---------------------------------------------------------------------
// The server sends a "change" event whenever the proxy committed something; the view that is
// open fetches what it shows again. EventSource reconnects by itself when a stream breaks, but
// gives up for good when the server answers with an error (503 while too many pages are open):
// the page then opens a new one, waiting longer after each refusal.
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 15000;
let onRecordChange = null;
let lastState = null;
let retryDelay = RETRY_FIRST_MS;
function connectEvents() {
  const events = new EventSource("/api/events");
  events.addEventListener("open", () => {
    retryDelay = RETRY_FIRST_MS;
    setText(live, "live");
    live.classList.add("on");
  });
  events.addEventListener("error", () => {
    setText(live, "reconnecting");
    live.classList.remove("on");
    if (events.readyState !== EventSource.CLOSED) return;  // the browser retries this one
    setTimeout(connectEvents, retryDelay);
    retryDelay = Math.min(retryDelay * 2, RETRY_MAX_MS);
  });
  events.addEventListener("change", (event) => {
    if (lastState !== null && event.data !== lastState && onRecordChange) onRecordChange();
    lastState = event.data;
  });
}

// ---- sessions list --------------------------------------------------------------------
const FILTERS = [
  ["outcome", "Outcome", "select", ["", "failed", "in_progress", "cut", "open", "quit", "client_closed",
    "upstream_closed", "timeout", "refused", "error", "shutdown"]],
  ["reply_class", "Replies", "select", ["", "2xx", "3xx", "4xx", "5xx"]],
  ["user", "User", "text"],
  ["upstream", "Upstream host", "text"],
  ["q", "Search", "search"],
  // Times are UTC unless they carry an offset, as for `mailtap sessions --since/--until`.
  ["since", "Since (UTC)", "text", "2h, 3d, 2026-11-24, 2026-11-24T03:00-05:00"],
  ["until", "Until (UTC)", "text", "2026-11-25T12:00"],
];

function filtersFromHash() {
  const query = location.hash.split("?")[1] || "";
  return new URLSearchParams(query);
}

// "[::1]:587", as --upstream takes it: an IPv6 literal without brackets is ambiguous.
function upstreamLabel(s) {
  const name = bytesOf(s, "upstream_host");
  const host = name.includes(":") ? joinText("[", name, "]") : name;
  return joinText(host, `:${s.upstream_port}`);
}

// The upstream leg's TLS, then the client's leg's when it had TLS to mailtap (--local-tls).
function sessionTls(s) {
  const client = s.client_tls_version ? `; client ${s.client_tls_version}` : "";
  if (!s.tls_version) return (s.tls_mode === "none" ? "plain" : (s.verify_result ? "failed" : "")) + client;
  let text = s.tls_version;
  if (s.insecure) text += " (not verified)";
  else if (s.verify_result === "ok") text += " verified";
  else if (s.verify_result) text += ` (${s.verify_result})`;
  return text + client;
}

const MAX_PAGE = 1000;  // the API's largest limit

function renderSessions(params, signal) {
  const form = el("div", { className: "filters", role: "search" });
  const inputs = {};
  for (const [name, label, kind, extra] of FILTERS) {
    let input;
    if (kind === "select") {
      input = el("select", { name });
      for (const option of extra) input.append(el("option", { value: option }, option || "any"));
    } else {
      input = el("input", { name, type: kind, placeholder: extra || "" });
    }
    input.value = params.get(name) || "";
    inputs[name] = input;
    form.append(el("label", {}, label, input));
  }
  // The search matches the recorded octets, not decoded text (docs/web.md): said where it is typed.
  inputs.q.placeholder = "as recorded, not decoded";
  inputs.q.title = "Matches the octets as recorded: a subject or text sent encoded (=?UTF-8?B?…?=, " +
    "quoted-printable, base64) or in another charset than UTF-8 is not found by its decoded words; " +
    "search for an ASCII word of it or an address.";
  const tableBody = el("tbody");
  // The status line is the list's live region (the table would be read whole again): its count,
  // what the filters found and, visually hidden, what a live refresh brought (listNews).
  const summary = el("span", {}, "Loading…");
  const news = el("span", { className: "visually-hidden" });
  const status = el("p", { className: "muted", role: "status", "aria-live": "polite" }, summary, news);
  const olderButton = el("button", { type: "button", hidden: true }, "Older sessions");
  const table = el("table", { id: "sessions" },
    el("thead", {}, el("tr", {}, ...["#", "Started (UTC)", "Client", "Upstream", "TLS", "User",
      "Outcome", "Msgs", "Last reply"].map((h) => el("th", {}, h)))),
    tableBody);
  view.replaceChildren(el("h1", {}, "Sessions"), form, status, table, el("p", {}, olderButton));

  let timer = null;
  const apply = () => {
    const next = new URLSearchParams();
    for (const [name, input] of Object.entries(inputs)) if (input.value) next.set(name, input.value);
    const hash = "#/" + (next.toString() ? "?" + next.toString() : "");
    if (location.hash !== hash) history.replaceState(null, "", hash);
    floor = null;  // other filters: start again from the newest page
    seenMax = null;
    olderWanted = false;
    // A fetch for the filters before is abandoned: the server stops a search nobody awaits.
    fetchAbort.abort();
    fetchAbort = new AbortController();
    load(next);
  };
  for (const input of Object.values(inputs)) {
    input.addEventListener(input.tagName === "SELECT" ? "change" : "input", () => {
      clearTimeout(timer);
      timer = setTimeout(apply, 250);
    });
  }

  // The first page is fetched again on every change. Once older pages are open, a change
  // fetches only what may differ from what is shown: the sessions recorded since the last
  // fetch (ids above the change token's max_session_id then), and those that were still
  // running then or are now (whether shown or not: one that ends may come to match the
  // filters, or cease to). A finished session never changes, nor does a cut one (its writer is
  // gone), so a list of thousands costs what is new, not every row shown. A change while a
  // fetch is under way fetches again once it is done; a click on "Older sessions" then is
  // served first, never dropped.
  let floor = null;  // the id of the oldest session shown, once older pages were opened
  let seenMax = null;  // every session up to this id was there when the list was last fetched
  let running = new Set();  // ids of the sessions still running at that fetch, shown or not
  let loading = false;
  let again = false;
  let olderWanted = false;
  let olderMore = false;
  let loadedQuery = null;  // the filters of the list shown, once loaded: a load for them is live
  let fetchAbort = new AbortController();  // the list's fetches, for the filters shown
  signal.addEventListener("abort", () => fetchAbort.abort());
  const fetchPage = (query, before, limit) => {
    const page = new URLSearchParams(query);
    if (before) page.set("before", before);
    if (limit) page.set("limit", limit);
    return getJson("/api/sessions?" + page.toString(), fetchAbort.signal);
  };
  // Every session `query` selects, however many pages; null once the view is left.
  async function fetchAll(query) {
    const rows = [];
    for (;;) {
      const data = await fetchPage(query, rows.length ? rows[rows.length - 1].id : null, MAX_PAGE);
      if (signal.aborted) return null;
      rows.push(...data.sessions);
      if (!data.more || data.sessions.length === 0) return rows;
    }
  }
  // The sessions with an id above `afterId` that are still running (a cut one is not).
  async function fetchRunning(afterId) {
    const rows = await fetchAll({ outcome: "in_progress", after: Math.max(afterId, 0) });
    if (rows === null) return null;
    return new Set(rows.filter((r) => r.writer_gone !== true).map((r) => r.id));
  }
  const tokenMaxId = () => (lastState === null ? null : JSON.parse(lastState).max_session_id);
  async function refreshFirstPage(query) {
    const token = tokenMaxId();
    const lowest = [...tableBody.children].reduce((low, tr) => Math.min(low, Number(tr.dataset.id)), Infinity);
    const nowRunning = await fetchRunning(lowest === Infinity ? 0 : lowest - 1);
    if (nowRunning === null) return null;
    const data = await fetchPage(query);
    if (signal.aborted) return null;
    showRows(tableBody, data.sessions);
    // Without a token yet, the newest session fetched: a session above it that the filters
    // left out and that is running is rechecked as a running one.
    seenMax = token ?? data.sessions.reduce((high, s) => Math.max(high, s.id), 0);
    running = nowRunning;
    return data.more;
  }
  // Newest first, as the API lists them: by start time, then id.
  const sortsBefore = (s, tr) =>
    s.started_at > tr.dataset.started || (s.started_at === tr.dataset.started && s.id > Number(tr.dataset.id));
  async function refreshChanged(query) {
    const token = tokenMaxId();
    const nowRunning = await fetchRunning(floor - 1);
    if (nowRunning === null) return null;
    const fresh = await fetchAll({ ...Object.fromEntries(query), after: seenMax });
    if (fresh === null) return null;
    const recheck = [...new Set([...running, ...nowRunning])].filter((id) => id <= seenMax);
    const changed = [];
    for (let i = 0; i < recheck.length; i += MAX_PAGE) {
      const rows = await fetchAll({ ...Object.fromEntries(query), ids: recheck.slice(i, i + MAX_PAGE).join(",") });
      if (rows === null) return null;
      changed.push(...rows);
    }
    const stale = new Set(recheck);
    // Rows older than the oldest shown belong to pages not opened: a session above `seenMax`
    // can be older (the token may predate the fetch it is paired with), and stays out.
    const oldest = tableBody.lastElementChild;
    const shownFrom = (s) => !oldest || sortsBefore(s, oldest) || s.id === Number(oldest.dataset.id);
    const arrived = new Map([...fresh, ...changed].filter(shownFrom).map((s) => [s.id, s]));
    // A row shown that may have changed is updated where it is (its start, and so its place,
    // does not change): a reader's focus on its link stays.
    for (const tr of [...tableBody.children]) {
      const id = Number(tr.dataset.id);
      if (id <= seenMax && !stale.has(id)) continue;
      if (arrived.has(id)) updateInPlace(tr, sessionRow(arrived.get(id)));
      else tr.remove();
      arrived.delete(id);
    }
    const incoming = [...arrived.values()].sort((a, b) =>
      a.started_at === b.started_at ? b.id - a.id : (a.started_at < b.started_at ? 1 : -1));
    let cursor = tableBody.firstElementChild;
    for (const s of incoming) {
      while (cursor && !sortsBefore(s, cursor)) cursor = cursor.nextElementSibling;
      tableBody.insertBefore(sessionRow(s), cursor);
    }
    if (tableBody.lastElementChild) floor = Number(tableBody.lastElementChild.dataset.id);
    seenMax = token ?? seenMax;
    running = nowRunning;
    return olderMore;
  }
  async function refresh(query) {
    if (floor === null || seenMax === null) return refreshFirstPage(query);
    return refreshChanged(query);
  }
  async function older(query) {
    const data = await fetchPage(query, tableBody.lastElementChild.dataset.id);
    if (signal.aborted) return null;
    tableBody.append(...data.sessions.map(sessionRow));
    if (tableBody.lastElementChild) floor = Number(tableBody.lastElementChild.dataset.id);
    olderMore = data.more;
    return data.more;
  }
  async function load(query, olderPage) {
    if (loading) {
      if (olderPage) olderWanted = true;
      else again = true;
      return;
    }
    loading = true;
    try {
      const liveRefresh = !olderPage && loadedQuery === query.toString();
      const before = shownRunning(tableBody);
      const more = olderPage ? await older(query) : await refresh(query);
      if (more === null) return;
      loadedQuery = query.toString();
      const shown = tableBody.children.length;
      // With no filter set, none hid a session: the record has none (yet).
      const filtered = [...query.values()].some((value) => value);
      const count = shown > 0 ?
        `${shown} session${shown === 1 ? "" : "s"}` + (more ? " shown; there are older ones" : "") :
        filtered ? "No sessions match these filters." :
          "No session recorded yet: sessions appear here as the proxy records them.";
      const heard = liveRefresh ? listNews(before, tableBody) : "";
      // News stays until other news or another count replaces it: set again, it would be read again.
      if (heard || summary.textContent !== count) setText(news, heard ? " " + heard : "");
      setText(summary, count);
      status.className = shown === 0 ? "muted empty" : "muted";
      olderButton.hidden = !more;
      olderButton.onclick = () => load(filtersFromHash(), true);
    } catch (error) {
      if (signal.aborted || error.name === "AbortError") return;  // left, or filters changed
      setText(news, "");
      setText(summary, "Could not load sessions: " + error.message);
      status.className = "error";
    } finally {
      loading = false;
      if (!signal.aborted && (olderWanted || again)) {
        const olderNext = olderWanted;  // the reader asked for it: before the live refresh
        if (olderNext) olderWanted = false;
        else again = false;
        load(filtersFromHash(), olderNext);
      }
    }
  }
  onRecordChange = () => load(filtersFromHash());
  load(params);
}

// Of each session shown, by id: whether it is running.
function shownRunning(tableBody) {
  return new Map([...tableBody.children].map((tr) => [tr.dataset.id, tr.classList.contains("running")]));
}

// What a live refresh changed in the list, in words for the status line's live region (a
// screen reader's user does not see a row appear): the sessions that arrived, and those shown
// running that ended. `before`: shownRunning before the refresh.
function listNews(before, tableBody) {
  const arrived = [];
  const ended = [];
  for (const tr of tableBody.children) {
    const id = tr.dataset.id;
    const cell = tr.querySelector(".outcome");
    const badge = cell.querySelector(".badge");
    const outcome = [...cell.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.data).join("") +
      (badge ? `, ${badge.textContent}` : "");
    if (!before.has(id)) {
      arrived.push(`New session ${id} from ${tr.children[2].textContent} to ${tr.children[3].textContent}: ${outcome}.`);
    } else if (before.get(id) && !tr.classList.contains("running")) {
      ended.push(`Session ${id} ended: ${outcome}.`);
    }
  }
  const MAX_SAID = 3;
  const said = arrived.length > MAX_SAID ? [`${arrived.length} new sessions.`] : arrived;
  return [...said, ...(ended.length > MAX_SAID ? [`${ended.length} sessions ended.`] : ended)].join(" ");
}

// No end recorded, and the process recording it is gone: it will never end.
const CUT_TEXT = "cut: the process recording it is gone (killed?); the record ends at its last " +
  "commit, and the server may have accepted a message after it";

// The list's rows become `sessions`, in their order, keeping every row that is already shown
// where it is: a row taken out of the page and put back would lose the reader's focus (the
// next Tab would start from the top of the page) and any text selected in it. A row shown
// whose session changed (it ended) is updated in place.
function showRows(tableBody, sessions) {
  const shown = new Map([...tableBody.children].map((tr) => [tr.dataset.id, tr]));
  const wanted = sessions.map((s) => {
    const row = sessionRow(s);
    const old = shown.get(row.dataset.id);
    if (!old) return row;
    shown.delete(row.dataset.id);
    updateInPlace(old, row);
    return old;
  });
  for (const gone of shown.values()) gone.remove();
  // What stays keeps its order, so only new rows are inserted: none is moved.
  let cursor = tableBody.firstElementChild;
  for (const row of wanted) {
    if (row === cursor) cursor = cursor.nextElementSibling;
    else tableBody.insertBefore(row, cursor);
  }
}

// Whether the session ended: its outcome says so too when its ended_at is unreadable (null,
// with `unreadable` saying why).
function hasEnded(s) {
  return Boolean(s.ended_at || s.outcome);
}

// Where a time is shown: the time, or "unreadable" when its column holds no timestamp.
function whenOrUnreadable(s, iso) {
  return iso ? when(iso) : s.unreadable ? "unreadable" : "";
}

function sessionRow(s) {
  const cut = !hasEnded(s) && s.writer_gone === true;
  const running = !hasEnded(s) && !cut;
  const link = `#/session/${s.id}`;
  const outcome = cut ? "cut" : running ? "in progress" : s.outcome;
  const classes = ["session-row"];
  if (s.failed || cut) classes.push("failed");
  if (running) classes.push("running");
  const lastReply = bytesOf(s, "last_reply");
  return el("tr", { className: classes.join(" "), "data-id": s.id, "data-started": s.started_at },
    el("td", { className: "num" }, el("a", { href: link }, String(s.id))),
    el("td", { className: "mono", title: s.started_at ? localTime(s.started_at) : bytesOf(s, "unreadable") },
      whenOrUnreadable(s, s.started_at)),
    el("td", { className: "mono" }, s.client_address),
    el("td", { className: "mono" }, upstreamLabel(s)),
    el("td", {}, sessionTls(s)),
    el("td", {}, s.auth_user || ""),
    el("td", { className: "outcome", title: cut ? CUT_TEXT : s.outcome_reason || "" }, outcome,
      s.failure_replies > 0 ? el("span", { className: "badge bad" }, `${s.failure_replies} failed`) : null),
    el("td", { className: "num" }, String(s.messages)),
    el("td", { className: "mono" }, lastReply));
}

// ---- one session: the transcript ------------------------------------------------------
const WHO = {
  client_to_upstream: ["C:", "client", "client → server"],
  client_to_mailtap: ["C:", "client", "client → mailtap (answered by mailtap)"],
  upstream_to_client: ["S:", "server", "server → client"],
  mailtap_to_upstream: ["M>", "mailtap", "mailtap → server"],
  upstream_to_mailtap: ["S>", "server", "server → mailtap"],
  mailtap_to_client: ["M:", "mailtap", "mailtap → client"],
  mailtap_note: ["~~", "note", "mailtap's note"],
};

// Wire text as `mailtap show` prints it: a CRLF ends a line; a bare LF or CR is `\n` or `\r`
// inside the line, so a line end that is not CRLF stays visible, and every other control
// character (C0 but tab, DEL, C1) is \xHH of its octets: none reaches the page (or a terminal
// a line is copied into) raw. Each escape is marked, so it is not read as typed text.
function wireText(text) {
  const nodes = [];
  let plain = "";
  const mark = (shown) => {
    if (plain) nodes.push(plain);
    plain = "";
    nodes.push(escapeMark(shown));
  };
  const hex = (octet) => `\\x${octet.toString(16).padStart(2, "0")}`;
  // Between the octets escaped as not UTF-8 (an EscapedText), which no CRLF straddles.
  let at = 0;
  for (const [start, end] of [...escapesOf(text), [text.length, text.length]]) {
    String(text).slice(at, start).split("\r\n").forEach((line, i) => {
      if (i > 0) plain += "\n";
      for (const ch of line) {
        const code = ch.codePointAt(0);
        if (ch === "\t" || (code >= 0x20 && code < 0x7f) || code > 0x9f) plain += ch;
        else mark(ch === "\n" ? "\\n" : ch === "\r" ? "\\r" : code < 0x80 ? hex(code) : hex(0xc2) + hex(code));
      }
    });
    if (end > start) mark(String(text).slice(start, end));
    at = end;
  }
  if (plain) nodes.push(plain);
  return nodes;
}

// Written after the session's end (its record closed): a note on what the client sent after
// its last reply, discarded unread by the lingering close. Marked as `mailtap show` marks it,
// so a 0.001s session's note at +1.8s does not read as part of it. The record's times are all
// written alike (ISO 8601 UTC, microseconds): compared as text, to the microsecond, as show
// compares them; by the clock otherwise.
function afterTheEnd(event, session) {
  if (!event.at || !session.ended_at) return false;
  if (event.at.length === session.ended_at.length) return event.at > session.ended_at;
  const s = seconds(session.ended_at, event.at);
  return s !== null && s > 0;
}

function transcriptLine(event, session, previous, explanation) {
  const [prefix, side, title] = WHO[event.direction] || ["??", "note", event.direction];
  const classes = ["line", side];
  const isNote = event.direction === "mailtap_note" || event.kind === "rewrite";
  if (isNote) classes.push("note");
  if (event.reply_code >= 400) classes.push("reply-bad");
  const at = seconds(session.started_at, event.at);
  const delta = previous ? seconds(previous.at, event.at) : null;
  const bytes = bytesOf(event, "bytes");
  const text = bytes.endsWith("\r\n") ? sliceText(bytes, 0, bytes.length - 2) : bytes;
  const content = el("span", { className: "text" });
  // An event that holds no octets but says what it was (mailtap's telnet refusals on a line
  // that may hold a secret's octets keep only their size, redacted): its note, as show gives it.
  if (!text && event.bytes_omitted === undefined && (isNote || event.note)) content.append(`${event.kind}: ${event.note || ""}`);
  else content.append(...wireText(text));
  if (event.redacted)
    content.append(el("span", { className: "redacted" }, `redacted: ${event.wire_size} bytes on the wire`));
  if (text && event.note && !text.includes(event.note))
    content.append(el("span", { className: "decoded" }, event.note));
  if (event.kind === "rewrite") content.append(el("span", { className: "tag" }, "[rewritten by mailtap]"));
  if (event.direction === "client_to_mailtap")
    content.append(el("span", { className: "tag" }, "[answered by mailtap]"));
  if (afterTheEnd(event, session))
    content.append(el("span", { className: "tag", title: "written after the session's end" },
      "[after the end]"));
  const line = el("div", { className: classes.join(" "), "data-seq": event.seq, "data-kind": event.kind },
    el("span", { className: "at" }, at === null ? "" : at < 0 ? "?" : "+" + at.toFixed(3) + "s"),
    el("span", { className: "delta", title: "since the previous line" },
      delta === null ? "" : "Δ" + duration(delta)),
    el("span", { className: "who", title }, prefix),
    content);
  if (explanation) {
    const code = event.reply_code + (event.enhanced_status ? " " + event.enhanced_status : "");
    const box = el("span", { className: "explain" + (event.reply_code >= 400 ? " bad" : "") },
      `${code}: ${explanation.meaning}`);
    if (explanation.fix) box.append(el("span", { className: "fix" }, "What to do: " + explanation.fix));
    line.append(el("span"), el("span"), el("span"), box);
  }
  return line;
}

function omittedText(octets) {
  return `… ${octets} more octets of the message body, not shown here: ` +
    "its message's page has the whole source (Download .eml)";
}

// mailtap's own exchange before TLS (its EHLO, STARTTLS, the server's replies to it: M>/S>) is
// folded into one <details>; its notes in between (the TLS handshake) stay in the fold with it.
// What the client got stays in view: the server's greeting is recorded before TLS too.
const MAILTAP_AND_SERVER = new Set(["mailtap_to_upstream", "upstream_to_mailtap"]);
const folds = (event) => event.phase === "pre_tls" && MAILTAP_AND_SERVER.has(event.direction);

// A client's message text (DATA's, or a BDAT chunk's payload) as `mailtap show` writes it. The
// record keeps it as one event per read of the client, and a read may end anywhere in a line
// (a person at telnet in character mode sends every key on its own): the events that follow
// one another are joined and their octets split at the CRLFs they hold, so a line that came in
// several reads is one line, and a `.` read on its own at the end of a line begun earlier stays
// in that line. A line has the time of the event its end came in, each event's time once (the
// lines after the first that end in the same read show none). mailtap's notes that come while
// a line is open (bare LF normalised) follow that line. Held: the octets of the open line only.
const isBodyText = (e) => e.direction === "client_to_upstream" && (e.kind === "data" || e.kind === "bdat_chunk") &&
  !e.redacted && !e.note && e.bytes_omitted === undefined && bytesOf(e, "bytes") !== "";

// What mailtap says while such text comes: its notes (bare LF normalised), and its answer to
// telnet's DO TIMING-MARK in a DATA body (IAC WONT TM to the client), recorded after the read
// that held it, which may end inside a line (Ctrl-C glued to the next line typed).
const isNoteOnText = (e) => e.direction === "mailtap_note" ||
  (e.direction === "mailtap_to_client" && e.kind === "note");

const utf8Encoder = new TextEncoder();

// The octets of recorded text as getJson gave it: UTF-8 as characters, the other octets \xHH.
function octetsOfText(value) {
  const text = String(value);
  const parts = [];
  let at = 0;
  for (const [start, end] of escapesOf(value)) {
    parts.push(utf8Encoder.encode(text.slice(at, start)), Uint8Array.of(parseInt(text.slice(start + 2, end), 16)));
    at = end;
  }
  parts.push(utf8Encoder.encode(text.slice(at)));
  return concatOctets(parts);
}

function concatOctets(parts) {
  if (parts.length === 1) return parts[0];
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}

// A line's octets as the page shows recorded text (as textOfBase64 does).
function lineText(octets) {
  const { text, escapes } = escapedText(octets, false);
  return escapes.length ? new EscapedText(text, escapes) : text;
}

class BodyText {
  // `show(event, lines, stamped)`: lines (text without CRLF) that ended in `event`, shown as one
  // transcript line, with the event's time when `stamped`; `note(event, i)`: a note, placed.
  constructor(show, note) {
    this.show = show;
    this.note = note;
    this.first = null;    // the text's first event: what it is (kind, phase)
    this.last = null;     // its latest event
    this.stamped = false; // the latest event's time is not shown yet
    this.held = [];       // the open line's octets, in pieces
    this.notes = [];      // notes that came while a line was open: [event, index]
  }

  get open() { return this.first !== null; }
  get lineOpen() { return this.held.length > 0; }

  // As mailtap show joins a message's text (smtp::BodyTextJoin): the same kind, message
  // (mail_transaction) and phase go on with it; a note is on it when it names its message (a
  // chunk sent without MAIL has none to tell them by).
  continues(e) {
    return this.open && e.kind === this.first.kind && e.phase === this.first.phase &&
      e.mail_transaction === this.first.mail_transaction;
  }

  isNoteOn(e) {
    return this.open && isNoteOnText(e) && e.mail_transaction != null &&
      e.mail_transaction === this.first.mail_transaction;
  }

  event(e) {
    if (!this.continues(e)) this.first = e;
    this.last = e;
    this.stamped = true;
    const octets = octetsOfText(bytesOf(e, "bytes"));
    const lines = [];
    let start = 0;
    const heldEndsInCr = this.lineOpen && this.held.at(-1).at(-1) === 0x0d;
    if (heldEndsInCr && octets[0] === 0x0a) {
      const line = concatOctets(this.held);
      lines.push(line.subarray(0, line.length - 1));
      this.held = [];
      start = 1;
    }
    for (let i = start; i + 1 < octets.length; i++) {
      if (octets[i] !== 0x0d || octets[i + 1] !== 0x0a) continue;
      lines.push(concatOctets([...this.held, octets.subarray(start, i)]));
      this.held = [];
      start = i + 2;
      i++;
    }
    if (start < octets.length) this.held.push(octets.slice(start));
    if (lines.length) this.lines(lines.map(lineText));
  }

  lines(texts) {
    this.show(this.last, texts.slice(0, 1), this.stamped);
    this.stamped = false;
    this.flushNotes();
    if (texts.length > 1) this.show(this.last, texts.slice(1), false);
  }

  // A mailtap note while the text is open: after the open line, if there is one.
  noteOn(e, i) {
    if (this.lineOpen) this.notes.push([e, i]);
    else this.note(e, i);
  }

  flushNotes() {
    for (const [e, i] of this.notes) this.note(e, i);
    this.notes = [];
  }

  // The text ends: its last line, if no CRLF ended it, as far as it came, then the notes held.
  finish() {
    if (this.lineOpen) {
      const line = concatOctets(this.held);
      this.held = [];
      this.lines([lineText(line)]);
    }
    this.flushNotes();
    this.first = this.last = null;
  }
}

function renderTranscript(detail, explanations) {
  // A screen reader hears the lines that arrive in a running session, not the transcript again
  // (its lines shown stay the same nodes: see updateInPlace).
  const box = el("div", { className: "transcript", id: "transcript", "aria-live": "polite", "aria-relevant": "additions" });
  const events = detail.events;
  const foldAhead = (i) => {
    for (let j = i + 1; j < events.length; j++) {
      if (events[j].direction === "mailtap_note") continue;
      return folds(events[j]);
    }
    return false;
  };
  let previous = null;
  let fold = null;
  let folded = 0;
  let omitted = null;  // the line that stands for the body octets not sent, and their count
  const place = (event, line, i) => {
    const keep = folds(event) ||
      (fold && event.direction === "mailtap_note" && (event.phase === "pre_tls" || foldAhead(i)));
    if (!keep) {
      fold = null;
      box.append(line);
      return;
    }
    if (!fold) {
      folded = 0;
      fold = el("details", { className: "pretls" }, el("summary"));
      box.append(fold);
    }
    fold.append(line);
    folded += 1;
    fold.firstChild.textContent = `mailtap's own exchange with the server before TLS: ${folded} lines (folded)`;
  };
  const eventLine = (event, i) => {
    place(event, transcriptLine(event, detail, previous, explanations[String(event.seq)]), i);
    previous = event;
  };
  const body = new BodyText((event, texts, stamped) => {
    const shown = { ...event, bytes: joinText(...texts.flatMap((text) => [text, "\r\n"])) };
    delete shown.bytes_encoding;
    const line = transcriptLine(shown, detail, stamped ? previous : null, undefined);
    if (stamped) {
      previous = event;
    } else {
      line.querySelector(".at").textContent = "";
      line.querySelector(".delta").textContent = "";
    }
    place(event, line, -1);
  }, eventLine);
  events.forEach((event, i) => {
    if (body.isNoteOn(event)) return body.noteOn(event, i);
    const text = isBodyText(event);
    if (body.open && !(text && body.continues(event))) body.finish();
    if (text) return body.event(event);
    // A large message's body beyond what the database holds is not sent with the session
    // (`bytes_omitted`): one line says how much, however many reads of the client it took.
    if (event.bytes_omitted !== undefined) {
      if (omitted && previous && previous.bytes_omitted !== undefined) {
        omitted.octets += event.bytes_omitted;
        omitted.text.textContent = omittedText(omitted.octets);
        previous = event;
        return;
      }
      omitted = { octets: event.bytes_omitted, text: el("span", { className: "omitted muted" }) };
      omitted.text.textContent = omittedText(omitted.octets);
      const line = transcriptLine(event, detail, previous, explanations[String(event.seq)]);
      line.querySelector(".text").append(omitted.text);
      previous = event;
      return place(event, line, i);
    }
    eventLine(event, i);
  });
  if (body.open) body.finish();
  return box;
}

// A recorded reply as one line, as `mailtap show` and the list's "Last reply" give it (as
// smtp::reply_summary): the code once, then every line's text joined by "; " (Exim's queue id
// is on the last line of its answer to BDAT ... LAST), a repeated enhanced status said once.
function replySummary(raw) {
  const text = String(raw);
  const lines = [];
  const breaks = /\r?\n|\r/g;
  let at = 0;
  for (let m; (m = breaks.exec(text)) !== null; at = m.index + m[0].length) lines.push([at, m.index]);
  lines.push([at, text.length]);
  const first = text.slice(lines[0][0], lines[0][1]);
  if (!/^[1-5]\d\d-/.test(first)) return sliceText(raw, lines[0][0], lines[0][1]);
  const code = first.slice(0, 3);
  const status = (first.slice(4).trimStart().match(/^[245]\.\d{1,3}\.\d{1,3}(?= |$)/) || [""])[0];
  const skipBlanks = (from, end) => {
    while (from < end && /\s/.test(text[from])) from++;
    return from;
  };
  const parts = [code + " "];
  for (let i = 0; i < lines.length; i++) {
    const [start, end] = lines[i];
    const line = text.slice(start, end);
    if (!/^[1-5]\d\d([ -]|$)/.test(line) || line.slice(0, 3) !== code) break;
    let from = skipBlanks(Math.min(start + 4, end), end);
    const said = text.slice(from, end);
    if (i > 0 && status && (said === status || said.startsWith(status + " "))) from = skipBlanks(from + status.length, end);
    if (from < end) {
      if (parts.length > 1) parts.push("; ");
      parts.push(sliceText(raw, from, end));
    }
    if (line[3] !== "-") break;
  }
  return joinText(...parts);
}

// Each RCPT with the server's reply beside it, a refused one marked: the server took the
// message for the accepted recipients only.
function recipientsWithReplies(recipients) {
  const out = [];
  recipients.forEach((r, i) => {
    if (i > 0) out.push(", ");
    const refused = !(r.reply_code >= 200 && r.reply_code < 300);
    out.push(bytesOf(r, "command"), " ", el("span", { className: refused ? "refused" : "accepted" },
      joinText("(", r.reply ? joinText(refused ? "refused: " : "", replySummary(bytesOf(r, "reply"))) : "no reply", ")")));
  });
  return out;
}

// Past a bound a message keeps no more of its RCPTs (each is in the session's events): how many
// it left out, "" if none; null where the record does not know (recorded before mailtap counted).
function recipientsLeftOut(m) {
  if (m.recipients_left_out === null) {
    return "unknown (recorded before mailtap counted them); each RCPT is in the session's events";
  }
  if (!m.recipients_left_out) return "";
  return `${m.recipients_left_out} (${m.accepted_recipients_left_out} accepted) not kept with ` +
    "the message, past what it keeps; each is in the session's events";
}

function facts(pairs) {
  const list = el("dl", { className: "facts" });
  for (const [name, value] of pairs) {
    if (value === undefined || value === null || value === "") continue;
    list.append(el("dt", {}, name), el("dd", {}, value));
  }
  return list;
}

// What can take the keyboard's focus in the view, in page order.
const FOCUSABLE = "a[href], button, input, select, summary, [tabindex]";

// Where the focus is in the view (which of its focusable elements, and what it says), or null.
function focusedPlace() {
  const active = document.activeElement;
  if (!active || active === document.body || !view.contains(active)) return null;
  return { index: [...view.querySelectorAll(FOCUSABLE)].indexOf(active), text: active.textContent };
}

// Focus the element at the same place in the view rebuilt, if it says the same.
function refocus(place) {
  const target = view.querySelectorAll(FOCUSABLE)[place.index];
  if (target && target.textContent === place.text) target.focus({ preventScroll: true });
}

async function renderSession(id, signal) {
  let data;
  try {
    data = await getJson(`/api/sessions/${id}`, signal);
  } catch (error) {
    if (!signal.aborted) showError(error);
    return;
  }
  if (signal.aborted) return;
  const s = data.session;
  const ended = hasEnded(s);
  const cut = !ended && s.writer_gone === true;
  const running = !ended && !cut;
  const outcome = cut ? CUT_TEXT : running ? "in progress" :
    s.outcome + (s.outcome_reason ? ": " + s.outcome_reason : "");
  const parts = [
    el("h1", {}, `Session ${s.id}`, running ? el("span", { className: "badge warn" }, "running") : null,
      cut ? el("span", { className: "badge bad" }, "cut") : null,
      s.outcome && s.outcome !== "quit" ? el("span", { className: "badge bad" }, s.outcome) : null),
    facts([
      ["started (UTC)", whenOrUnreadable(s, s.started_at)],
      // duration_ms: as the proxy measured it, else the wall-clock span (session_json.cpp);
      // null for an ended session when a column it comes from is damaged (`unreadable` says
      // which: duration_us, or a time with no length measured), or the span is past the clock.
      ["duration", ended && s.duration_ms === null ? (s.unreadable ? "unreadable" : "unknown") :
        ended ? sessionDuration(s.duration_ms / 1000) : cut ? "no end recorded" : "still running"],
      // A time column that holds no timestamp (a damaged file): which, and what it holds.
      ["damaged", bytesOf(s, "unreadable")],
      // As `mailtap show`'s client line: the client's own TLS to mailtap, when it had it.
      ["client", joinText(s.client_address, " → ", s.listen_address,
        s.client_tls_version ? ` (${s.client_tls_version})` : "")],
      ["upstream", joinText(upstreamLabel(s), ` (${s.tls_mode})`,
        s.resolved_address ? ` at ${s.resolved_address}` : "")],
      ["user", s.auth_user ? joinText(s.auth_user, s.auth_mechanism ? ` (${s.auth_mechanism}, by ${s.auth_by})` : "") : ""],
      ["outcome", el("span", { id: "session-outcome", "aria-live": "polite" }, outcome)],
      // The counters are written with the session's end: before it (or without one) they are 0.
      ["bytes", ended ? `${s.bytes_client_to_upstream} to the server, ${s.bytes_upstream_to_client} to the client` :
        cut ? "not counted: they are written when the session ends, and it has no end" :
          "counted when the session ends"],
      ["replay of", s.replay_of ? `session ${s.replay_of}` : ""],
    ]),
    el("div", { className: "actions" },
      el("a", { href: `/api/sessions/${s.id}/download`, download: `mailtap-session-${s.id}.json` },
        "Download as JSON"),
      el("a", { href: "#/" }, "All sessions")),
    el("h2", {}, "Transcript"),
    el("div", { className: "legend" },
      el("span", {}, "C: client → server"), el("span", {}, "S: server → client"),
      el("span", {}, "M> mailtap → server"), el("span", {}, "S> server → mailtap"),
      el("span", {}, "M: mailtap → client"), el("span", {}, "~~ mailtap's note")),
    renderTranscript(s, data.explanations || {}),
    el("h2", {}, "TLS to the server"),
    facts([
      ["version", s.tls_version || "none"],
      ["cipher", s.cipher],
      ["resumed", s.tls_version ? (s.tls_resumed ? "yes" : "no") : ""],
      ["SNI", s.sni],
      // "verified as" only for a certificate that was: a refused one was checked against the name.
      ["verified as", s.verify_status === "ok" ? s.verified_name : ""],
      ["checked against", s.verify_status === "ok" ? "" : s.verified_name],
      ["verification", (s.verify_result || "") + (s.insecure ? " (--insecure)" : "")],
      ["client certificate", s.client_cert_subject ?
        `${s.client_cert_subject} (presented by mailtap, sha256 ${s.client_cert_sha256})` : ""],
    ]),
  ];
  for (const cert of s.certificates) {
    parts.push(el("details", { className: "cert" },
      el("summary", {}, `[${cert.position}] ${cert.subject}`),
      facts([["issuer", cert.issuer], ["valid", `${cert.not_before} – ${cert.not_after}`],
        ["sha256", cert.sha256]]),
      el("pre", { className: "raw" }, cert.pem)));
  }
  parts.push(el("h2", {}, "Messages"));
  if (s.messages.length === 0) parts.push(el("p", { className: "muted" }, "No message in this session."));
  for (const m of s.messages) {
    parts.push(el("p", {},
      el("a", { href: `#/session/${s.id}/message/${m.seq}` }, `Message ${m.seq}`),
      " ", bytesOf(m, "mail_from"), " → ", ...recipientsWithReplies(m.recipients),
      m.recipients_left_out === null ? " and perhaps RCPTs left out of the record's message (in the events)"
        : m.recipients_left_out ? ` and ${m.recipients_left_out} RCPTs left out of the record's message (in the events)` : "",
      ` — ${m.size} bytes, `, m.final_reply ? replySummary(bytesOf(m, "final_reply")) : "no final reply"));
  }
  // Re-rendered as a running session grows, it is updated in place: the lines shown stay the
  // same nodes, so the text the reader selected (a reply being copied), the scroll position,
  // what the reader unfolded and the keyboard's focus stay (the next Tab would otherwise start
  // from the top of the page), and a screen reader hears the new lines only. A focused element
  // that was replaced after all (a certificate recorded since moved what follows it) gives the
  // focus to the one at its place, if it says the same.
  if (view.dataset.session === String(id)) {
    const focused = focusedPlace();
    updateChildrenInPlace(view, parts);
    if (focused && !view.contains(document.activeElement)) refocus(focused);
  } else {
    view.replaceChildren(...parts);
  }
  view.dataset.session = String(id);
  onRecordChange = running ? () => renderSession(id, signal) : null;
}

// ---- one message ----------------------------------------------------------------------
// The source shown on the page: its first MiB, as the API gives of a text part. A message of
// hundreds of MiB put into the page whole would hang the tab.
const RAW_SHOWN = 1 << 20;

// The first `limit` octets of what `url` answers (read no further: the rest is not fetched),
// and whether there was more. An error answer (a message `mailtap prune` removed meanwhile)
// is thrown with its words, never returned as if it were the content.
async function fetchStart(url, limit) {
  const response = await fetch(url);
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    const error = new Error(body.error || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  const reader = response.body.getReader();
  const chunks = [];
  let length = 0;
  while (length <= limit) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    length += value.length;
  }
  const cut = length > limit;
  if (cut) reader.cancel();
  const octets = new Uint8Array(Math.min(length, limit));
  let at = 0;
  for (const chunk of chunks) {
    const piece = chunk.subarray(0, octets.length - at);
    octets.set(piece, at);
    at += piece.length;
  }
  return { octets, cut };
}

// The length of the well-formed UTF-8 sequence at `i` (RFC 3629: no overlong form, no
// surrogate, nothing past U+10FFFF), 0 if there is none, -1 if the octets end inside one.
function utf8SequenceAt(octets, i) {
  const lead = octets[i];
  if (lead < 0x80) return 1;
  const n = lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
  if (n === 0) return 0;
  // The second octet's range first: an E0 80 or ED A0 at the cut is no start of a character.
  if (i + 1 < octets.length) {
    const second = octets[i + 1];
    if ((lead === 0xe0 && second < 0xa0) || (lead === 0xed && second > 0x9f) ||
        (lead === 0xf0 && second < 0x90) || (lead === 0xf4 && second > 0x8f)) return 0;
  }
  for (let k = 1; k < n; k++) {
    if (i + k >= octets.length) return -1;
    if ((octets[i + k] & 0xc0) !== 0x80) return 0;
  }
  return n;
}

// Octets as text with every octet that is not part of UTF-8 written `\xHH`, as `mailtap show`
// writes it: a raw view that decoded them as U+FFFD would not show what was sent. `cut`: the
// octets are the start of more, so a character the cut split is left out, not escaped.
function escapedText(octets, cut) {
  try {
    // ignoreBOM: a byte-order mark is octets of the message, shown like any other.
    return { text: new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(octets, { stream: cut }), escaped: 0, escapes: [] };
  } catch {
    // Not all UTF-8: decoded run by run below.
  }
  const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });
  let text = "";
  const escapes = [];  // where each \xHH is in the text: [start, end)
  let run = 0;
  let i = 0;
  while (i < octets.length) {
    const n = utf8SequenceAt(octets, i);
    if (n > 0) {
      i += n;
      continue;
    }
    if (n < 0 && cut) break;
    text += utf8.decode(octets.subarray(run, i));
    escapes.push([text.length, text.length + 4]);
    text += `\\x${octets[i].toString(16).padStart(2, "0")}`;
    i += 1;
    run = i;
  }
  text += utf8.decode(octets.subarray(run, i));
  return { text, escaped: escapes.length, escapes };
}

// ---- an HTML part ---------------------------------------------------------------------
// A mail's HTML never becomes a live document, not even in a sandboxed frame: Chromium
// connects to hosts the markup names (<link rel=preconnect>, <iframe src>) before any
// Content-Security-Policy is applied, and that connection (and the DNS lookup) tells the sender
// that the mail was read, when and from where. The markup is parsed by DOMParser, whose
// document has no browsing context and so loads and runs nothing; of it only the structure
// and the text are copied onto the page, as elements of a fixed list created here with no
// attribute at all, so no URL from the mail reaches a document that could fetch it.
const HTML_SHOWN = 1 << 20;
const HTML_KEPT = new Set(["p", "br", "hr", "b", "strong", "i", "em", "u", "s", "strike", "small", "big",
  "sub", "sup", "code", "kbd", "samp", "tt", "pre", "blockquote", "q", "cite", "abbr", "mark", "ul", "ol",
  "li", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "table", "caption", "thead", "tbody", "tfoot",
  "tr", "td", "th", "div", "span", "center", "font", "address", "section", "article", "header",
  "footer", "main", "nav", "aside", "figure", "figcaption", "details", "summary"]);
// Not content: dropped with all they hold.
const HTML_DROPPED = new Set(["head", "script", "style", "template", "svg", "math", "iframe", "frame",
  "frameset", "object", "embed", "applet", "audio", "video", "canvas", "select", "datalist", "noembed",
  "noframes", "link", "meta", "base"]);
// Beyond this depth the markup is shown as text only (the page's own stack stays small).
const HTML_DEPTH = 100;

function htmlAsPage(source) {
  const parsed = new DOMParser().parseFromString(source, "text/html");
  const box = el("div", { className: "html-part" });
  copyHtml(parsed.body || parsed.documentElement, box, 0);
  return box;
}

function copyHtml(from, to, depth) {
  for (const node of from.childNodes) {
    if (node.nodeType === Node.TEXT_NODE) {
      to.append(node.data);
      continue;
    }
    if (node.nodeType !== Node.ELEMENT_NODE) continue;
    const name = node.localName;
    if (HTML_DROPPED.has(name)) continue;
    if (name === "img" || (name === "input" && node.getAttribute("type") === "image")) {
      const alt = node.getAttribute("alt");
      to.append(el("span", { className: "html-left-out" }, alt ? `[image: ${alt}]` : "[image]"));
      continue;
    }
    if (depth >= HTML_DEPTH) {
      to.append(node.textContent);
      continue;
    }
    const kept = HTML_KEPT.has(name) ? document.createElement(name === "font" || name === "center" ? "span" : name) : null;
    copyHtml(node, kept || to, depth + 1);
    if (kept) to.append(kept);
    // A link's target is shown as text beside it (where would a click have gone?), never a link.
    const href = name === "a" ? node.getAttribute("href") : null;
    if (href && !href.startsWith("#")) to.append(el("span", { className: "html-left-out" }, ` <${href}>`));
  }
}

// The HTML part shown as described above, with its source beside it.
async function renderHtmlPart(part, box, filename) {
  const { octets, cut } = await fetchStart(part.url, HTML_SHOWN);
  let decoder;
  try {
    decoder = new TextDecoder(part.charset ? bytesOf(part, "charset") : "utf-8");
  } catch {
    decoder = new TextDecoder();  // a charset the browser does not know
  }
  const source = decoder.decode(octets, { stream: cut });
  box.append(
    el("p", { className: "muted html-note" },
      "HTML part, shown as its text and layout only: no image, style, frame or link of the mail is loaded " +
      "(each would tell the sender the mail was read); a link's address is shown beside it."),
    htmlAsPage(source),
    el("details", {}, el("summary", {}, "HTML source"), el("pre", { className: "raw html-source" }, source)));
  if (cut) {
    box.append(el("p", { className: "muted text-truncated" },
      `… only the first ${HTML_SHOWN} of this part's ${part.size} bytes are shown here: `,
      el("a", { href: part.url, download: filename || `part-${part.index}.html` }, "download it"), "."));
  }
}

async function renderMessage(id, seq, signal) {
  let m;
  try {
    m = await getJson(`/api/sessions/${id}/messages/${seq}`, signal);
  } catch (error) {
    if (!signal.aborted) showError(error);
    return;
  }
  if (signal.aborted) return;
  onRecordChange = null;
  const base = `/api/sessions/${id}/messages/${seq}`;
  const header = (name) => headerText(m.headers.find((h) => bytesOf(h, "name").toLowerCase() === name) || {}, "value");
  const parts = [
    el("h1", {}, header("subject") || `Message ${seq} of session ${id}`),
    el("div", { className: "actions" },
      el("a", { href: `#/session/${id}` }, `Session ${id}`),
      el("a", { href: base + "/raw", download: `mailtap-session-${id}-message-${seq}.eml` }, "Download .eml")),
    el("h2", {}, "Envelope"),
    facts([
      ["MAIL", bytesOf(m, "mail_from")],
      ...m.recipients.map((r) => ["RCPT", joinText(bytesOf(r, "command"), " → ", bytesOf(r, "reply"))]),
      ["RCPTs left out", recipientsLeftOut(m)],
      ["size", `${m.size} bytes via ${m.via_bdat ? "BDAT" : "DATA"}` + (m.body_truncated ? " (truncated in the record)" : "")],
      ["sha256", m.sha256],
      ["final reply", bytesOf(m, "final_reply")],
      ["damaged", bytesOf(m, "unreadable")],
    ]),
    el("h2", {}, "Headers"),
    facts(m.headers.map((h) => [bytesOf(h, "name"), headerValue(h, "value")])),
    el("h2", {}, "Parts"),
  ];
  for (const part of m.parts) {
    const filename = headerText(part, "filename");
    const title = joinText(bytesOf(part, "content_type"), part.charset && joinText("; ", bytesOf(part, "charset")),
      filename && joinText(" — ", filename), ` (${part.size} bytes)`);
    const box = el("div", { className: "part" }, el("h3", {}, title));
    if (part.content_type === "text/html" && !part.attachment) {
      renderHtmlPart(part, box, filename).catch((error) => {
        box.append(el("p", { className: "error" }, `The HTML part could not be shown: ${error.message}`));
      });
    } else if (part.text !== undefined) {
      box.append(el("pre", { className: "raw text-part" }, controlsEscaped(bytesOf(part, "text"))));
      // A large text comes cut (its first MiB): the whole is at the part's own URL.
      if (part.text_truncated) {
        box.append(el("p", { className: "muted text-truncated" },
          `… only the start of this part is shown here (it is ${part.size} bytes): `,
          el("a", { href: part.url, target: "_blank", rel: "noopener noreferrer" }, "open the whole part"),
          " or ",
          el("a", { href: part.url, download: filename || `part-${part.index}.txt` }, "download it"),
          "."));
      }
    } else {
      box.append(el("a", { href: part.url, download: filename || `part-${part.index}` }, "Download"));
    }
    parts.push(box);
  }
  // A message of very many parts is listed up to a limit (the server keeps no more).
  if (m.parts_left_out > 0) {
    parts.push(el("p", { className: "muted parts-left-out" },
      `… and ${m.parts_left_out} more parts, not listed (more than ${m.parts.length} parts): `,
      el("a", { href: base + "/raw", download: `mailtap-session-${id}-message-${seq}.eml` }, "download the raw message"),
      " to see them."));
  }
  const raw = el("pre", { className: "raw", id: "raw-source" });
  const rawBox = el("details", {}, el("summary", {}, "Raw source"), raw);
  rawBox.addEventListener("toggle", async () => {
    if (!rawBox.open || raw.textContent) return;
    rawBox.querySelectorAll(".raw-note").forEach((note) => note.remove());
    let start;
    try {
      start = await fetchStart(base + "/raw", RAW_SHOWN);
    } catch (error) {
      // Never the error's JSON in the box, as if it were the message.
      raw.after(el("p", { className: "error raw-note" }, error.status === 404
        ? `The source cannot be shown: the message is no longer in the record (${error.message}; ` +
          "mailtap prune removes old sessions). Reload the page to see what the record holds now."
        : `The source could not be read: ${error.message}`));
      return;
    }
    const { text, escaped, escapes } = escapedText(start.octets, start.cut);
    raw.replaceChildren(...textPieces(controlsEscaped(new EscapedText(text, escapes))));
    if (escaped > 0) {
      raw.after(el("p", { className: "muted raw-note escaped-octets" },
        `${escaped} octet${escaped === 1 ? "" : "s"} that are not UTF-8 (8-bit text in another charset, or binary) ` +
        "are shown as \\xHH, as mailtap show writes them; ",
        el("a", { href: base + "/raw", download: `mailtap-session-${id}-message-${seq}.eml` }, "Download .eml"),
        " for the exact octets."));
    }
    if (start.cut) {
      raw.after(el("p", { className: "muted raw-note text-truncated" },
        `… only the first ${RAW_SHOWN} of the message's ${m.size} bytes are shown here: `,
        el("a", { href: base + "/raw", download: `mailtap-session-${id}-message-${seq}.eml` }, "Download .eml"),
        " for the whole source."));
    }
  });
  parts.push(el("h2", {}, "Source"), rawBox);
  view.replaceChildren(...parts);
}

// ---- audit ----------------------------------------------------------------------------
async function renderAudit(signal) {
  let a;
  try {
    a = await getJson("/api/audit", signal);
  } catch (error) {
    if (!signal.aborted) showError(error);
    return;
  }
  if (signal.aborted) return;
  onRecordChange = null;
  // A section made of a part damage kept from being read says so, never "none".
  const unread = (parts) => parts.filter((p) => (a.unread || []).includes(p));
  const list = (items, render, empty, parts = []) => {
    const missing = unread(parts);
    const none = missing.length === 0
      ? el("p", { className: "muted" }, empty)
      : el("p", { className: "audit-item bad" }, `Not checked to the end: ${missing.join(", ")} could not be read (see Integrity).`);
    return items.length === 0 ? none : el("div", {}, ...(missing.length === 0 ? [] : [none]), el("ul", {}, ...items.map((x) => el("li", {}, ...render(x)))));
  };
  const session = (id) => el("a", { href: `#/session/${id}` }, `session ${id}`);
  view.replaceChildren(
    el("h1", {}, "Audit", el("span", { className: a.ok ? "badge ok" : "badge bad" }, a.ok ? "clean" : "problems found")),
    el("p", { className: "muted" }, unread(["sessions"]).length === 0 ? `${a.sessions} sessions; the same findings as mailtap audit.`
      : "Sessions not counted: the sessions could not be read; the same findings as mailtap audit."),
    el("h2", {}, "Integrity"),
    el("p", {}, a.integrity.join("; ")),
    ...(a.removed_while_auditing.length === 0 ? [] : [el("p", { className: "muted" },
      `Removed by a prune while the audit ran (not damage, not counted): session ${a.removed_while_auditing.join(", ")}.`)]),
    el("h2", {}, "Credentials in the record"),
    list(a.credential_leaks, (l) => [el("span", { className: "audit-item bad" }, "LEAK "), session(l.session), `, ${l.where}: ${l.what}`], "None found.", ["events", "messages", "sessions"]),
    el("h2", {}, "Bare line ends and smuggling-shaped DATA"),
    list(a.rewrites, (r) => [session(r.session), `: ${r.count} rewrite(s) by mailtap, e.g. ${r.sample}`], "No rewrites.", ["events"]),
    list(a.smuggling_shapes, (s) => [session(s.session), `: client DATA contains smuggling shapes: ${s.shapes}`], "No smuggling shapes.", ["events"]),
    list(a.refused_chunks_with_commands || [], (c) => [session(c.session), `: refused BDAT chunk holds command-shaped lines: ${c.what}`], "No refused chunk holds command-shaped lines.", ["events"]),
    el("h2", {}, "Outcomes"),
    list(Object.entries(a.outcomes), ([o, n]) => [`${n} × ${o}`], "No sessions.", ["failures"]),
    el("h2", {}, "Failure replies by code and upstream"),
    list(a.failures, (f) => [el("span", { className: "audit-item bad" }, `${f.count}× ${f.reply_code} ${f.enhanced_status}`),
      ` ${f.upstream}${f.by_mailtap ? ", by mailtap" : ""} (${f.sessions} session${f.sessions === 1 ? "" : "s"}): ${f.meaning}`], "None.", ["failures"]),
    el("h2", {}, "TLS"),
    list(a.tls.versions, (t) => [`${t.sessions} × ${t.version} ${t.cipher}`], "No sessions.", ["tls"]),
    list(a.tls.insecure_sessions, (id) => [session(id), " ran with --insecure"], "No --insecure sessions.", ["sessions"]),
    list(a.tls.verify_failures, (v) => [session(v.session), `: certificate not verified: ${v.verify_result}`], "No verification failures.", ["sessions"]),
    list(a.tls.certificates, (c) => [`certificate ${c.sha256.slice(0, 16)} ${c.subject}: ${c.state} (${c.not_after}), first in `, session(c.first_session)],
      "No certificate near expiry.", ["tls"]),
  );
}

// ---- routing (#/, #/session/ID, #/session/ID/message/N, #/audit) -------------------------
// Each navigation has its own AbortController: going elsewhere aborts what the view it leaves
// still fetches, and a render whose data arrived anyway leaves the page alone. The view the
// address names is the one shown, however long an earlier one takes to load.
let navigation = new AbortController();
function route() {
  navigation.abort();
  navigation = new AbortController();
  const signal = navigation.signal;
  delete view.dataset.session;
  const hash = location.hash || "#/";
  const path = hash.slice(1).split("?")[0];
  let match;
  onRecordChange = null;
  // Each view its own title: history, tabs and bookmarks of different views can be told apart.
  const titled = (title) => { document.title = `${title} — mailtap`; };
  if ((match = path.match(/^\/session\/(\d+)\/message\/(\d+)$/))) {
    titled(`Message ${match[2]} of session ${match[1]}`);
    renderMessage(match[1], match[2], signal);
  } else if ((match = path.match(/^\/session\/(\d+)$/))) {
    titled(`Session ${match[1]}`);
    renderSession(match[1], signal);
  } else if (path === "/audit") {
    titled("Audit");
    renderAudit(signal);
  } else if (path === "/" || path === "") {
    titled("Sessions");
    renderSessions(filtersFromHash(), signal);
  } else {
    titled("Not found");
    renderNotFound(hash);
  }
}

// An address mistyped or cut short says so, rather than showing another view under it.
function renderNotFound(hash) {
  view.replaceChildren(el("h1", {}, "Not found"),
    el("p", { className: "error" }, `No page at ${hash}: this page shows #/ (the sessions), ` +
      "#/session/ID, #/session/ID/message/N and #/audit."),
    el("p", {}, el("a", { href: "#/" }, "All sessions")));
}

window.addEventListener("hashchange", route);
route();
connectEvents();
