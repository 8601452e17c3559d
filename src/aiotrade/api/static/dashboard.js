// The live dashboard: one account's snapshot over the WebSocket, its recent orders, risk limits and trading
// state over REST. No framework, no build step. Money arrives as decimal strings and is shown as such (never
// parsed into floats). The API key stays in sessionStorage; the stream is opened with a single-use ticket,
// because a browser cannot set headers on a WebSocket handshake.
"use strict";

const KEY_SLOT = "aiotrade.apiKey";
const ACCOUNT_SLOT = "aiotrade.account";
const MAX_EVENTS = 50;
const CLOSE_POLICY = 1008;

const state = { key: null, account: null, since: null, socket: null, backoffMs: 500, refreshTimer: null };
const $ = (id) => document.getElementById(id);

document.addEventListener("DOMContentLoaded", () => {
  takeKeyFromFragment();
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_SLOT, $("api-key").value.trim());
    sessionStorage.setItem(ACCOUNT_SLOT, $("account").value.trim());
    start();
  });
  $("forget").addEventListener("click", () => signOut(""));
  start();
});

// `/dashboard#key=at_...` (the fragment never reaches a server): kept for this tab, then wiped from the URL.
function takeKeyFromFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("key")) {
    sessionStorage.setItem(KEY_SLOT, fragment.get("key"));
    if (fragment.get("account")) sessionStorage.setItem(ACCOUNT_SLOT, fragment.get("account"));
    history.replaceState(null, "", location.pathname + location.search);
  }
}

function start() {
  state.key = sessionStorage.getItem(KEY_SLOT);
  state.account = sessionStorage.getItem(ACCOUNT_SLOT) || new URLSearchParams(location.search).get("account");
  if (!state.key) {
    show(false);
    return;
  }
  show(true);
  connect();
}

function show(board) {
  $("login").hidden = board;
  $("board").hidden = !board;
  $("forget").hidden = !board;
}

function signOut(reason) {
  sessionStorage.removeItem(KEY_SLOT);
  state.key = null;
  if (state.socket) state.socket.close(1000);
  $("login-error").textContent = reason;
  show(false);
}

class Refused extends Error {}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Authorization: `Bearer ${state.key}`, Accept: "application/json", ...(options.headers || {}) },
  });
  if (response.status === 401) {
    signOut("The server did not accept this API key.");
    throw new Refused("unauthorized");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || body.title || `HTTP ${response.status}`);
  return body;
}

async function connect() {
  let ticket;
  try {
    ticket = (await api("/api/v1/auth/ws-ticket", { method: "POST" })).ticket;
  } catch (error) {
    if (!(error instanceof Refused)) retryLater(`ticket: ${error.message}`);
    return;
  }
  const url = new URL("/api/v1/portfolio/live/stream", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("ticket", ticket);
  if (state.account) url.searchParams.set("account", state.account);
  if (state.since !== null) url.searchParams.set("since", String(state.since));
  const socket = new WebSocket(url);
  state.socket = socket;
  socket.onopen = () => {
    state.backoffMs = 500;
    setConnection("live", "on");
  };
  socket.onmessage = (message) => onFrame(JSON.parse(message.data));
  socket.onclose = (event) => {
    if (state.socket !== socket || !state.key) return;
    if (event.code === CLOSE_POLICY) {
      setConnection("refused", "off");
      $("stream-error").textContent = `The stream refused: ${event.reason || "policy"}`;
      if (event.reason.startsWith("unauthorized")) signOut("The server did not accept this API key.");
      return;
    }
    retryLater(event.reason || "connection closed");
  };
}

function retryLater(why) {
  setConnection(`reconnecting (${why})`, "warn");
  setTimeout(() => state.key && connect(), state.backoffMs);
  state.backoffMs = Math.min(state.backoffMs * 2, 10_000);
}

function setConnection(text, kind) {
  const pill = $("connection");
  pill.textContent = text;
  pill.className = `pill ${kind}`;
}

function onFrame(frame) {
  if (frame.type === "snapshot") {
    const first = state.account !== frame.account || !$("risk-limits").childElementCount;
    state.account = frame.account;
    $("stream-error").textContent = "";
    renderSnapshot(frame.data);
    if (first) refreshAccount();
  } else if (frame.type === "event") {
    state.since = frame.seq;
    addEvent(frame);
    scheduleRefresh();
  } else if (frame.type === "error") {
    $("stream-error").textContent = `Snapshot unavailable: ${frame.detail}`;
  }
}

function renderSnapshot(snapshot) {
  $("account-name").textContent = `account ${snapshot.account}`;
  $("total-value").textContent = money(snapshot.total_value);
  $("quote").textContent = snapshot.quote;
  $("available").textContent = money(snapshot.available_balance);
  setSigned($("unrealized-pnl"), snapshot.total_unrealized_pnl);
  $("unrealized-pct").textContent = percent(snapshot.total_unrealized_pnl_pct);
  const quality = snapshot.market_data_quality;
  $("data-quality").textContent = quality.status;
  $("data-quality").className = `figure ${quality.status === "fresh" ? "up" : "down"}`;
  $("data-missing").textContent = quality.missing.length ? `missing: ${quality.missing.join(", ")}` : "";
  $("snapshot-time").textContent = new Date(snapshot.timestamp).toLocaleString();
  fillTable("positions", snapshot.positions, (p) => [
    p.asset, number(p.quantity), number(p.locked), money(p.price), money(p.market_value), money(p.average_cost),
    signed(p.unrealized_pnl), percent(p.unrealized_pnl_pct),
  ]);
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(refreshAccount, 150); // one refresh for a burst of events
}

async function refreshAccount() {
  const account = encodeURIComponent(state.account);
  try {
    const [page, limits, trading] = await Promise.all([
      api(`/api/v1/accounts/${account}/orders?limit=20`),
      api(`/api/v1/accounts/${account}/risk-limits`),
      api(`/api/v1/accounts/${account}/trading-state`),
    ]);
    fillTable("orders", page.orders, (o) => [
      new Date(o.created_at).toLocaleTimeString(), o.id, o.symbol, o.side, o.type,
      number(o.amount ?? o.quote_amount), money(o.price), number(o.filled), o.status,
    ], (row, o) => { row.dataset.orderId = o.id; });
    renderLimits(limits);
    const pill = $("trading-state");
    pill.textContent = `trading ${trading.state}${trading.reason ? ` (${trading.reason})` : ""}`;
    pill.className = `pill ${trading.state === "ACTIVE" ? "on" : trading.state === "HALTED" ? "off" : "warn"}`;
  } catch (error) {
    if (!(error instanceof Refused)) $("stream-error").textContent = `Account data: ${error.message}`;
  }
}

function renderLimits(limits) {
  const list = $("risk-limits");
  list.replaceChildren();
  for (const [name, value] of Object.entries(limits)) {
    const term = document.createElement("dt");
    term.textContent = name.replaceAll("_", " ");
    const detail = document.createElement("dd");
    detail.textContent = value === null ? "off" : typeof value === "object" ? JSON.stringify(value) : String(value);
    list.append(term, detail);
  }
}

function addEvent(frame) {
  const data = frame.data || {};
  const item = document.createElement("li");
  const what = [data.symbol, data.side, data.type, data.status, number(data.amount ?? data.quote_amount), number(data.price)]
    .filter((part) => part !== undefined && part !== null && part !== "—")
    .join(" ");
  item.textContent = `#${frame.seq} ${frame.kind}: ${what}`;
  const list = $("events");
  list.prepend(item);
  while (list.childElementCount > MAX_EVENTS) list.lastElementChild.remove();
}

function fillTable(id, rows, cells, decorate) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren(...rows.map((row) => {
    const tr = document.createElement("tr");
    for (const cell of cells(row)) {
      const td = document.createElement("td");
      if (cell instanceof Node) td.append(cell); else td.textContent = cell;
      tr.append(td);
    }
    if (decorate) decorate(tr, row);
    return tr;
  }));
}

// Decimal strings, shown exactly: trailing zeros of the fraction trimmed, nothing rounded.
function number(value) {
  if (value === null || value === undefined) return "—";
  const text = String(value);
  return text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text;
}

function money(value) {
  return number(value);
}

// A fraction (0.0512) as a percentage (5.12 %), by moving the decimal point: exact, like the rest.
function percent(value) {
  if (value === null || value === undefined) return "";
  let text = String(value);
  const sign = text.startsWith("-") ? "-" : "";
  if (sign) text = text.slice(1);
  const [whole, fraction = ""] = text.split(".");
  const padded = fraction.padEnd(2, "0");
  const integer = (whole + padded.slice(0, 2)).replace(/^0+(?=\d)/, "");
  const rest = padded.slice(2);
  return `${sign}${number(rest ? `${integer}.${rest}` : integer)} %`;
}

function signed(value) {
  const span = document.createElement("span");
  setSigned(span, value);
  return span;
}

function setSigned(element, value) {
  element.textContent = number(value);
  const negative = typeof value === "string" && value.startsWith("-");
  const zero = value === null || value === undefined || /^-?0*\.?0*$/.test(String(value));
  element.classList.toggle("down", negative && !zero);
  element.classList.toggle("up", !negative && !zero);
}
